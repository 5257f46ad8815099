"""Rollup buckets in MongoDB, folded from the reading chunks not folded yet; a bulk restore and retention.

Ingest only inserts (readings.py); ``materialize_rollups`` (every few seconds, rollup_schedule.py) folds the chunks
not marked ``rolled``: their buckets are computed in memory with numpy and inserted as rollup parts
(rollup_parts.py: one document per resolution and fold, never updated), then the chunks are marked. A fold first
marks its chunks with its id, so a fold interrupted by a crash is run again with the same id and inserts the same
part ids: nothing is folded twice. ``query_rollups`` merges the parts of each bucket with what the chunks not folded
yet hold, so an aggregate includes a reading as soon as it is stored. A call folds for at most FOLD_BUDGET_S; the
rest waits for the next. Layout 2's bucket documents (``rollups``: ``s.<quantity>`` holds n, sum, min, max, first
and last of one bucket) are read too.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np

from gridloop.platform.rollups import RESOLUTIONS, RollupBucket, RollupRow, columns_rows
from gridloop.platform.store.mongo.chunks import ChunkColumns, ChunkPlan, of_devices
from gridloop.platform.store.mongo.part_compaction import MongoPartCompaction
from gridloop.platform.store.mongo.rollup_parts import part_docs, part_rows

DAY_MS = 86_400_000
RESOLUTION_OF = {width: name for name, width in RESOLUTIONS.items()}
FOLD_CHUNKS = 50  # chunks folded per step
FOLD_BUDGET_S = 1.0  # a materialize_rollups call stops after the step that passes this (the rest: next call)
Buckets = dict[tuple[str, str, str, int], RollupBucket]


def encode_field(name: str) -> str:
    """A quantity name made safe as a field name (no '.', no '$'), reversibly (layout 2's bucket documents)."""
    return name.replace("%", "%25").replace(".", "%2E").replace("$", "%24") or "%"


class MongoRollups(MongoPartCompaction):
    """Rollup parts folded from chunks; queries merge parts, layout 2's buckets and chunks not folded yet."""

    def materialize_rollups(self, tenant: str, upto: int) -> int:
        """Fold the chunks not folded yet whose readings are all older than ``upto``, then (``compact_parts``) merge
        the parts of closed hours with the time left (part_compaction.py); how many readings were folded."""
        deadline = time.monotonic() + FOLD_BUDGET_S
        folded = self._fold(tenant, {"t1": {"$lt": upto}}, deadline)
        if self.compact_parts:
            self.compact_rollup_parts(tenant, upto, deadline)
        return folded

    def _fold(self, tenant: str, which: dict[str, Any], deadline: float) -> int:
        """Fold chunks ``which`` selects, FOLD_CHUNKS at a time, until none is left or ``deadline`` passes."""
        folded = 0
        while True:
            with self._writing():
                docs = self._fold_step_chunks(tenant, which)
                if not docs:
                    return folded
                fold_id = docs[0]["rolled"]
                buckets: Buckets = {}
                for doc in docs:
                    for row in _chunk_rows(tenant, doc):
                        _fold_row(buckets, row)
                self._insert_parts(tenant, fold_id, buckets)
                self.db.chunks.update_many({"_id": {"$in": [d["_id"] for d in docs]}, "rolled": fold_id},
                                           {"$set": {"rolled": True}})
            folded += sum(int(d["n"]) for d in docs)
            if time.monotonic() > deadline:
                return folded

    def _fold_step_chunks(self, tenant: str, which: dict[str, Any]) -> list[dict]:
        """The chunks of the next fold step, marked with its id: an interrupted fold's first (same id again)."""
        flt = {"tenant": tenant, **which}
        started = self.db.chunks.find_one({**flt, "rolled": {"$type": "string"}}, {"rolled": 1})
        if started is not None:
            return list(self.db.chunks.find({"tenant": tenant, "rolled": started["rolled"]}))
        ids = sorted(d["_id"] for d in self.db.chunks.find({**flt, "rolled": False}, {"_id": 1}).limit(FOLD_CHUNKS))
        if not ids:
            return []
        fold_id = f"{tenant}|f|" + hashlib.blake2b("\n".join(ids).encode(), digest_size=12).hexdigest()
        self.db.chunks.update_many({"_id": {"$in": ids}, "rolled": False}, {"$set": {"rolled": fold_id}})
        return list(self.db.chunks.find({"_id": {"$in": ids}, "rolled": fold_id}))

    def _insert_parts(self, tenant: str, fold_id: str, buckets: Buckets) -> None:
        by_res: dict[str, list[tuple[str, str, RollupBucket]]] = {}
        for (dev, q, res, _), b in buckets.items():
            by_res.setdefault(res, []).append((dev, q, b))
        docs = [d for res, rows in by_res.items() for d in part_docs(tenant, fold_id, res, rows)]
        self._insert_skipping("rollup_parts", docs, 1)  # an _id that exists: this fold's earlier attempt

    def restore_rollups(self, rows: Iterable[RollupRow]) -> int:
        """Fold restored buckets into the stored ones, as parts of their own (rows of one key merged)."""
        by_tenant: dict[str, Buckets] = {}
        total = 0
        for row in rows:
            _fold_row(by_tenant.setdefault(row[0], {}), row)
            total += 1
        with self._writing():
            for tenant, buckets in by_tenant.items():
                self._insert_parts(tenant, f"{tenant}|r|{uuid.uuid4().hex}", buckets)
        return total

    def count_rollups(self, tenant: str) -> int:
        keys = {(d["dev"], q, d["res"], d["b"]) for d in self.db.rollups.find({"tenant": tenant}, {"s": 1, "dev": 1,
                                                                                                 "res": 1, "b": 1})
                for q in d.get("s", {})}
        for doc in self.counted_parts(list(self.db.rollup_parts.find({"tenant": tenant}))):
            keys.update((r[1], encode_field(r[2]), doc["res"], r[4]) for r in part_rows(tenant, doc))
        return len(keys)

    def query_rollups(
        self, tenant: str, devices: list[str], quantity: str, resolution: str, start: int, end: int
    ) -> list[RollupBucket]:
        if resolution not in RESOLUTIONS:
            raise ValueError(f"unknown resolution {resolution!r}")
        out: Buckets = {}
        enc = encode_field(quantity)
        for d in self.db.rollups.find(
            {"tenant": tenant, "dev": {"$in": devices}, "res": resolution, "b": {"$gte": start, "$lt": end}},
            {"_id": 0, "dev": 1, "b": 1, "s." + enc: 1},
        ):
            if (s := d.get("s", {}).get(enc)) is not None:
                _fold_row(out, (tenant, d["dev"], quantity, RESOLUTIONS[resolution], d["b"], s["n"], s["sum"],
                                s["min"], s["max"], s["f"]["t"], s["f"]["v"], s["l"]["t"], s["l"]["v"]))
        parts = self.db.rollup_parts.find({"tenant": tenant, "res": resolution, "devs": {"$in": devices},
                                           "q": quantity, "b0": {"$lt": end}, "b1": {"$gte": start}})
        for doc in self.counted_parts(list(parts)):
            for row in part_rows(tenant, doc, devices, quantity):
                if start <= row[4] < end:
                    _fold_row(out, row)
        for row in self._unfolded_rows(tenant, devices, quantity, RESOLUTIONS[resolution], start, end):
            _fold_row(out, row)
        return [out[k] for k in sorted(out, key=lambda k: (k[0], k[3]))]

    def _unfolded_rows(
        self, tenant: str, devices: list[str], quantity: str, width: int, start: int, end: int
    ) -> list[RollupRow]:
        """Rows (bucket start in [start, end)) of the readings in chunks not folded yet, read after the parts: a fold
        finishing in between leaves its chunks out (a query racing a fold may miss them, never count them twice)."""
        lo, hi = start - start % width, end - end % width + width
        out = []
        for doc in self.db.chunks.find({"tenant": tenant, "rolled": {"$ne": True}, "devs": {"$in": devices},
                                        "q": quantity, "t0": {"$lt": hi}, "t1": {"$gte": lo}}):
            out += [row for row in _chunk_rows(tenant, doc, devices, quantity, width) if start <= row[4] < end]
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
            cutoff = now - int(raw_days * DAY_MS)
            self._fold(tenant, {"t0": {"$lt": cutoff}}, float("inf"))  # never delete a reading not folded yet
            deleted["raw"] = self._delete_readings_before(tenant, cutoff, batch)
        for res, days in (rollup_days or {}).items():
            cutoff = now - int(days * DAY_MS) - RESOLUTIONS[res]
            deleted[res] = self._delete_in_batches(
                "rollups", {"tenant": tenant, "res": res, "b": {"$lte": cutoff}}, batch, count_field="s")
            deleted[res] += self._delete_parts_upto(tenant, res, cutoff, batch)
        return deleted

    def _delete_parts_upto(self, tenant: str, res: str, cutoff: int, batch: int) -> int:
        """Rows of buckets starting at or before ``cutoff``: parts wholly so go, a part across it is rewritten."""
        total = 0
        while True:
            docs = list(self.db.rollup_parts.find({"tenant": tenant, "res": res, "b0": {"$lte": cutoff}}).limit(batch))
            if not docs:
                return total
            with self._writing():
                counted = {d["_id"] for d in self.counted_parts(docs)}  # a merge's sources or outputs count once
                for doc in docs:
                    b = np.frombuffer(doc["b"], "<i8")
                    old = b <= cutoff
                    total += int(old.sum()) if doc["_id"] in counted else 0
                    if old.all():
                        self.db.rollup_parts.delete_one({"_id": doc["_id"]})
                        continue
                    buckets: Buckets = {}
                    for row in part_rows(tenant, doc, keep=~old):
                        _fold_row(buckets, row)
                    rest = [(dev, q, bk) for (dev, q, _, _), bk in buckets.items()]
                    new = part_docs(tenant, doc["_id"].rsplit("|", 2)[0], res, rest)[0]
                    merging = {k: doc[k] for k in ("m", "mt", "merge") if k in doc}  # its place in a merge stays
                    self.db.rollup_parts.replace_one({"_id": doc["_id"]}, {**new, **merging, "_id": doc["_id"]})

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
                    total += int(old.sum())
                    if self._claims:
                        gone = [k for k, o in zip(cols.keys(tenant), old.tolist(), strict=True) if o]
                        self.db.reading_keys.delete_many({"_id": {"$in": gone}, "c": doc["_id"]})

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
        keep &= of_devices(cols.di, cols.devs, devices)
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
