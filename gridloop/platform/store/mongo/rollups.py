"""Rollup buckets in MongoDB (one document per device, resolution and bucket, all quantities), folded from the
reading chunks not folded yet, a bulk restore and retention.

Ingest only inserts (readings.py); ``materialize_rollups`` (every few seconds, rollup_schedule.py) folds the chunks
not marked ``rolled`` into the buckets: computed in memory with numpy, each touched bucket upserted once per fold,
then the chunks marked. ``query_rollups`` adds what the chunks not folded yet hold, so an aggregate includes a
reading as soon as it is stored. A fold runs for at most FOLD_BUDGET_S per call (FerretDB's upserts are slow:
ingest keeps its turn); what is left is folded at the next call."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from gridloop.platform.rollups import RESOLUTIONS, RollupBucket, RollupRow, columns_rows
from gridloop.platform.store.mongo.chunks import ChunkColumns, ChunkPlan
from gridloop.platform.store.mongo.connection import MAX_RETRIES, MongoBase

DAY_MS = 86_400_000
RESOLUTION_OF = {width: name for name, width in RESOLUTIONS.items()}
FOLD_CHUNKS = 20  # chunks folded per step (one upsert per touched bucket of all of them)
FOLD_BUDGET_S = 1.0  # a materialize_rollups call stops after the step that passes this (the rest: next call)
Buckets = dict[tuple[str, str, str, int], RollupBucket]


def encode_field(name: str) -> str:
    """A quantity name made safe as a field name (no '.', no '$'), reversibly."""
    return name.replace("%", "%25").replace(".", "%2E").replace("$", "%24") or "%"


class MongoRollups(MongoBase):
    """Rollups: ``s.<quantity>`` holds n, sum, min, max, first and last of one bucket."""

    def _upsert_rollups(self, tenant: str, buckets: Buckets) -> None:
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
        by_tenant: dict[str, Buckets] = {}
        total = 0
        for row in rows:
            _fold_row(by_tenant.setdefault(row[0], {}), row)
            total += 1
        with self._writing():
            for tenant, buckets in by_tenant.items():
                self._upsert_rollups(tenant, buckets)
        return total

    def materialize_rollups(self, tenant: str, upto: int) -> int:
        """Fold the chunks not folded yet whose readings are all older than ``upto``; how many readings."""
        return self._fold(tenant, {"t1": {"$lt": upto}}, time.monotonic() + FOLD_BUDGET_S)

    def _fold(self, tenant: str, which: dict[str, Any], deadline: float) -> int:
        """Fold chunks ``which`` selects, FOLD_CHUNKS at a time, until none is left or ``deadline`` passes. A crash
        between the upserts and the mark folds those chunks again (MongoDB without transactions, FerretDB)."""
        folded = 0
        while True:
            with self._writing():
                docs = list(self.db.chunks.find({"tenant": tenant, "rolled": False, **which}).limit(FOLD_CHUNKS))
                if not docs:
                    return folded
                buckets: Buckets = {}
                for doc in docs:
                    for row in _chunk_rows(tenant, doc):
                        _fold_row(buckets, row)
                self._upsert_rollups(tenant, buckets)
                self.db.chunks.update_many({"_id": {"$in": [d["_id"] for d in docs]}}, {"$set": {"rolled": True}})
            folded += sum(int(d["n"]) for d in docs)
            if time.monotonic() > deadline:
                return folded

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
        out: dict[tuple[str, int], RollupBucket] = {}
        for d in docs:
            s = d.get("s", {}).get(enc)
            if s is not None:
                out[(d["dev"], d["b"])] = RollupBucket(d["dev"], d["b"], s["n"], s["sum"], s["min"], s["max"],
                                                       s["f"]["t"], s["f"]["v"], s["l"]["t"], s["l"]["v"])
        for b in self._unfolded_buckets(tenant, devices, quantity, RESOLUTIONS[resolution], start, end):
            if (have := out.get((b.dev, b.start))) is None:
                out[(b.dev, b.start)] = b
            else:
                have.merge(b)
        return [out[k] for k in sorted(out)]

    def _unfolded_buckets(
        self, tenant: str, devices: list[str], quantity: str, width: int, start: int, end: int
    ) -> list[RollupBucket]:
        """Buckets (start in [start, end)) of the readings in chunks not folded yet (read after the stored ones:
        a fold finishing in between leaves its chunks out, not in twice)."""
        lo, hi = start - start % width, end - end % width + width
        out: Buckets = {}
        for doc in self.db.chunks.find({"tenant": tenant, "rolled": False, "devs": {"$in": devices},
                                        "q": quantity, "t0": {"$lt": hi}, "t1": {"$gte": lo}}):
            for row in _chunk_rows(tenant, doc, devices, quantity, width):
                if start <= row[4] < end:
                    _fold_row(out, row)
        return list(out.values())

    def apply_retention(
        self, tenant: str, raw_days: float | None = None, rollup_days: dict[str, float] | None = None,
        batch: int = 500, now: int | None = None,
    ) -> dict[str, int]:
        """Delete the tenant's readings older than ``raw_days`` and rollup buckets that ended more than
        ``rollup_days[res]`` ago, ``batch`` documents at a time."""
        now = now if now is not None else time.time_ns() // 1_000_000
        deleted: dict[str, int] = {}
        if raw_days is not None:
            cutoff = now - int(raw_days * DAY_MS)
            self._fold(tenant, {"t0": {"$lt": cutoff}}, float("inf"))  # never delete a reading not folded yet
            deleted["raw"] = self._delete_readings_before(tenant, cutoff, batch)
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


def _chunk_rows(tenant: str, doc: dict, devices: list[str] | None = None, quantity: str | None = None,
                width: int | None = None) -> list[RollupRow]:
    """Rollup rows of a chunk's readings (of ``devices`` and ``quantity`` only, at ``width`` only, if given)."""
    cols = ChunkColumns.of(doc)
    values, shape = cols.values, tuple(cols.quantities)
    keep = np.ones(len(cols.ts), dtype=bool)
    if devices is not None:
        keep &= np.isin(cols.di, [i for i, d in enumerate(cols.devs) if d in set(devices)])
    if quantity is not None:
        j = cols.quantities.index(quantity)
        values, shape = values[:, j:j + 1], (quantity,)
    names = [cols.devs[i] for i in cols.di[keep].tolist()]
    widths = tuple(RESOLUTIONS.values()) if width is None else (width,)
    return columns_rows(tenant, shape, names, cols.ts[keep], values[keep], widths)


def _fold_row(buckets: Buckets, row: RollupRow) -> None:
    """Fold one rollup row into the buckets by (dev, quantity, resolution, start)."""
    _, dev, q, width, start, n, total_sum, vmin, vmax, fts, fv, lts, lv = row
    bucket = RollupBucket(dev, start, n, total_sum, vmin, vmax, fts, fv, lts, lv)
    key = (dev, q, RESOLUTION_OF[width], start)
    if (cur := buckets.get(key)) is None:
        buckets[key] = bucket
    else:
        cur.merge(bucket)
