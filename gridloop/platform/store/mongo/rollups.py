"""Rollup buckets in MongoDB (one document per device, resolution and bucket, all quantities), a bulk restore
and retention."""

from __future__ import annotations

import time
from collections.abc import Iterable

from gridloop.platform.envelope import Reading
from gridloop.platform.rollups import RESOLUTIONS, RollupBucket, RollupRow, compute_rollups
from gridloop.platform.store.mongo.chunks import ChunkColumns, ChunkPlan
from gridloop.platform.store.mongo.connection import MAX_RETRIES, MongoBase

DAY_MS = 86_400_000
RESOLUTION_OF = {width: name for name, width in RESOLUTIONS.items()}


def encode_field(name: str) -> str:
    """A quantity name made safe as a field name (no '.', no '$'), reversibly."""
    return name.replace("%", "%25").replace(".", "%2E").replace("$", "%24") or "%"


class MongoRollups(MongoBase):
    """Rollups: ``s.<quantity>`` holds n, sum, min, max, first and last of one bucket."""

    def _add_rollups(self, tenant: str, readings: list[Reading]) -> None:
        self._upsert_rollups(tenant, compute_rollups(readings))

    def _upsert_rollups(self, tenant: str, buckets: dict[tuple[str, str, str, int], RollupBucket]) -> None:
        """One upsert per (device, resolution, bucket) carrying every quantity: FerretDB updates are costly."""
        docs: dict[tuple[str, str, int], dict[str, dict]] = {}
        for (dev, q, res, start), b in buckets.items():
            ops = docs.get((dev, res, start))
            if ops is None:
                ops = docs[(dev, res, start)] = {"$inc": {}, "$min": {}, "$max": {}}
            f = "s." + encode_field(q)
            ops["$inc"][f + ".n"] = b.n
            ops["$inc"][f + ".sum"] = b.sum
            ops["$min"][f + ".min"] = b.min
            ops["$min"][f + ".f"] = {"t": b.first_ts, "v": b.first}
            ops["$max"][f + ".max"] = b.max
            ops["$max"][f + ".l"] = {"t": b.last_ts, "v": b.last}
        updates = []
        for (dev, res, start), ops in docs.items():
            ops["$setOnInsert"] = {"res": res, "b": start, **self._shard_key_on_insert(tenant, dev)}
            updates.append({"q": self._by_id(f"{tenant}|{dev}|{res}|{start}", tenant, dev), "u": ops, "upsert": True})
        for _ in range(MAX_RETRIES):  # a duplicate key means a concurrent insert won: retry as an update
            failed = self._update("rollups", updates)
            if not failed:
                return
            updates = [u for i, u in enumerate(updates) if i in failed]
        raise RuntimeError("rollup updates kept conflicting")

    def restore_rollups(self, rows: Iterable[RollupRow]) -> int:
        """Fold restored buckets into the stored ones with ingest's upserts, per tenant (rows of one key merged)."""
        by_tenant: dict[str, dict[tuple[str, str, str, int], RollupBucket]] = {}
        total = 0
        for tenant, dev, q, width, start, n, total_sum, vmin, vmax, fts, fv, lts, lv in rows:
            bucket = RollupBucket(dev, start, n, total_sum, vmin, vmax, fts, fv, lts, lv)
            buckets = by_tenant.setdefault(tenant, {})
            key = (dev, q, RESOLUTION_OF[width], start)
            if (cur := buckets.get(key)) is None:
                buckets[key] = bucket
            else:
                cur.merge(bucket)
            total += 1
        with self._writing():
            for tenant, buckets in by_tenant.items():
                self._upsert_rollups(tenant, buckets)
        return total

    def materialize_rollups(self, tenant: str, upto: int) -> int:
        """Nothing to do: this store folds every reading into its buckets at ingest."""
        return 0

    def count_rollups(self, tenant: str) -> int:
        return sum(len(d.get("s", {})) for d in self.db.rollups.find({"tenant": tenant}, {"_id": 0, "s": 1}))

    def query_rollups(
        self, tenant: str, devices: list[str], quantity: str, resolution: str, start: int, end: int
    ) -> list[RollupBucket]:
        if resolution not in RESOLUTIONS:
            raise ValueError(f"unknown resolution {resolution!r}")
        enc = encode_field(quantity)
        docs = self.db.rollups.find(
            {"tenant": tenant, "dev": {"$in": devices}, "res": resolution, "b": {"$gte": start, "$lt": end}},
            {"_id": 0, "dev": 1, "b": 1, "s." + enc: 1},
        )
        out = []
        for d in docs:
            s = d.get("s", {}).get(enc)
            if s is not None:
                out.append(RollupBucket(d["dev"], d["b"], s["n"], s["sum"], s["min"], s["max"], s["f"]["t"],
                                        s["f"]["v"], s["l"]["t"], s["l"]["v"]))
        out.sort(key=lambda b: (b.dev, b.start))
        return out

    def apply_retention(
        self, tenant: str, raw_days: float | None = None, rollup_days: dict[str, float] | None = None,
        batch: int = 500, now: int | None = None,
    ) -> dict[str, int]:
        """Delete the tenant's readings older than ``raw_days`` and rollup buckets that ended more than
        ``rollup_days[res]`` ago, ``batch`` documents at a time."""
        now = now if now is not None else time.time_ns() // 1_000_000
        deleted: dict[str, int] = {}
        if raw_days is not None:
            deleted["raw"] = self._delete_readings_before(tenant, now - int(raw_days * DAY_MS), batch)
        for res, days in (rollup_days or {}).items():
            cutoff = now - int(days * DAY_MS) - RESOLUTIONS[res]
            deleted[res] = self._delete_in_batches(
                "rollups", {"tenant": tenant, "res": res, "b": {"$lte": cutoff}}, batch, count_field="s")
        return deleted

    def _delete_readings_before(self, tenant: str, cutoff: int, batch: int) -> int:
        """Readings with ts < cutoff: chunks wholly older go, a chunk across the cutoff is rewritten with the rest
        (one document, atomically); then their keys go, so a reading arriving again later is stored again."""
        total = 0
        while True:
            docs = list(self.db.chunks.find({"tenant": tenant, "t0": {"$lt": cutoff}}).limit(batch))
            if not docs:
                return total
            with self._writing():
                for doc in docs:
                    cols = ChunkColumns.of(doc)
                    old = cols.ts < cutoff
                    if old.all():
                        self.db.chunks.delete_one({"_id": doc["_id"]})
                    else:
                        rest = [r for r in cols.readings() if r.ts >= cutoff]
                        fields = ChunkPlan(tenant, tuple(cols.quantities), rest).document()
                        del fields["_id"], fields["rolled"]
                        self.db.chunks.update_one({"_id": doc["_id"]}, {"$set": fields})
                    gone = [k for k, o in zip(cols.keys(tenant), old.tolist(), strict=True) if o]
                    self.db.reading_keys.delete_many({"_id": {"$in": gone}, "c": doc["_id"]})
                    total += len(gone)

    def _delete_in_batches(self, collection: str, query: dict, batch: int, count_field: str) -> int:
        """Delete matching documents ``batch`` at a time; counts rollup buckets (per quantity)."""
        total = 0
        coll = self.db[collection]
        while True:
            docs = list(coll.find(query, {"_id": 1, count_field: 1}).limit(batch))
            if not docs:
                return total
            with self._lock:
                coll.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
            for d in docs:
                value = d.get(count_field, 0)
                total += len(value) if isinstance(value, dict) else int(value)
