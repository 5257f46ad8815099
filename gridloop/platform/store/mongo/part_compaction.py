"""Rollup parts compacted: the parts of a closed hour, of one resolution, merged into a few (issue #15).

A fold every 5 s inserts one part per resolution (rollup_parts.py), so a one-day aggregate read some 17,000 parts per
resolution. Once every bucket of an hour's parts has ended (GRACE_MS before the fold's ``upto``), up to MERGE_PARTS
of them (the sources) are merged column-wise into new parts (the merge's outputs) and removed, in steps that keep
every query right if the process dies between any two of them, or two replicas merge at once:

1. the outputs are inserted with ``merge`` = the merge id (a hash of the sources' ids): not counted yet;
2. the sources are marked ``m`` = merge id, each only if no other merge marked it; a merge that could not mark all
   of its sources gives up (lifts its marks, removes its outputs);
3. the merge is committed (``part_merges`` gets its id): from now on its outputs count and its sources do not;
4. the sources are deleted.

A query counts a part unless a committed merge marked it, and an output only once its merge is committed
(``counted_parts``). A merge that died before committing leaves marks and outputs behind: after STALE_MS the next
compaction lifts the marks and removes the outputs. Outputs are parts like any other, so late parts of an hour
merge with them later.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable

from gridloop.platform.rollups import RESOLUTIONS
from gridloop.platform.store.mongo.connection import MongoBase
from gridloop.platform.store.mongo.rollup_parts import column_part_docs, merged_columns

HOUR_MS = 3_600_000
GRACE_MS = 10 * 60_000  # an hour's parts merge once its last bucket ended this long before the fold's upto
STALE_MS = 10 * 60_000  # an uncommitted merge this old died: its marks are lifted, its outputs removed
MERGE_PARTS = 32  # sources per merge: bounds the memory of one merge (at 10,000 meters at 1 Hz, ~3 M rows)
SCAN_PARTS = 2_000
STATE = {"_id": 1, "b0": 1, "m": 1, "mt": 1, "merge": 1}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class MongoPartCompaction(MongoBase):
    """Merges the rollup parts of closed hours; tells which parts a query counts."""

    def committed_merges(self, ids: Iterable[str | None]) -> set[str]:
        wanted = sorted({i for i in ids if i is not None})
        if not wanted:
            return set()
        return {d["_id"] for d in self.db.part_merges.find({"_id": {"$in": wanted}}, {"_id": 1})}

    def counted_parts(self, docs: list[dict]) -> list[dict]:
        """The parts a query counts: none a committed merge replaced, outputs of committed merges only."""
        if not any("m" in d or "merge" in d for d in docs):
            return docs
        done = self.committed_merges([d.get("m") for d in docs] + [d.get("merge") for d in docs])
        return [d for d in docs if d.get("m") not in done and ("merge" not in d or d["merge"] in done)]

    def compact_rollup_parts(self, tenant: str, upto: int, deadline: float = float("inf")) -> int:
        """Merge the parts of closed hours, MERGE_PARTS at a time, until none is left or ``deadline`` passes (the
        monotonic clock); how many parts were merged away."""
        merged = 0
        for res, width in RESOLUTIONS.items():
            while time.monotonic() <= deadline:
                n = self._compact_step(tenant, res, upto - GRACE_MS - width)
                if not n:
                    break
                merged += n
        return merged

    def _compact_step(self, tenant: str, res: str, closed: int) -> int:
        """One merge of the first hour (by bucket start) that is over, whose parts' buckets all ended by ``closed``,
        and that has two or more parts nobody is merging; 0: none."""
        with self._writing():
            docs = list(self.db.rollup_parts.find({"tenant": tenant, "res": res, "b1": {"$lte": closed}}, STATE)
                        .sort("b0", 1).limit(SCAN_PARTS))
            hours: dict[int, list[str]] = {}
            busy: set[int] = set()
            for d in self._settled(docs):
                hour = int(d["b0"]) // HOUR_MS
                if d.get("m") is not None:  # another merge (in progress) has it
                    busy.add(hour)
                hours.setdefault(hour, []).append(d["_id"])
            for hour, ids in hours.items():  # an hour merges once it is over: not again each time a part closes
                if (hour + 1) * HOUR_MS <= closed and hour not in busy and len(ids) >= 2:
                    return self._merge(tenant, res, sorted(ids[:MERGE_PARTS]))
        return 0

    def _settled(self, docs: list[dict]) -> list[dict]:
        """The parts left to merge, after finishing what merges left behind: sources of committed merges deleted,
        marks and outputs of merges that died (older than STALE_MS, uncommitted) lifted and removed."""
        done = self.committed_merges([d.get("m") for d in docs] + [d.get("merge") for d in docs])
        old = _now_ms() - STALE_MS
        parts = self.db.rollup_parts
        live = []
        for d in docs:
            mark, made_by = d.get("m"), d.get("merge")
            if mark in done:
                parts.delete_one({"_id": d["_id"], "m": mark})
            elif made_by is not None and made_by not in done:
                if d.get("mt", 0) < old:  # an output of a merge that died
                    parts.delete_one({"_id": d["_id"], "merge": made_by})
            elif mark is not None and d.get("mt", 0) < old:  # marked by a merge that died
                parts.update_one({"_id": d["_id"], "m": mark}, {"$unset": {"m": "", "mt": ""}})
                live.append({**d, "m": None})
            else:
                live.append(d)
        return live

    def _merge(self, tenant: str, res: str, sources: list[str]) -> int:
        """Steps 1-4 of the module doc for these parts; how many were merged away (0: another merge had one)."""
        merge_id = f"{tenant}|m|" + hashlib.blake2b("\n".join(sources).encode(), digest_size=12).hexdigest()
        now = _now_ms()
        parts = self.db.rollup_parts
        devs, qs, cols = merged_columns(list(parts.find({"_id": {"$in": sources}})))
        outputs = [{**doc, "merge": merge_id, "mt": now}
                   for doc in column_part_docs(tenant, merge_id, res, devs, qs, cols)]
        self._insert_skipping("rollup_parts", outputs, 1)
        parts.update_many({"_id": {"$in": sources}, "m": {"$exists": False}}, {"$set": {"m": merge_id, "mt": now}})
        if parts.count_documents({"_id": {"$in": sources}, "m": merge_id}) < len(sources):
            parts.update_many({"_id": {"$in": sources}, "m": merge_id}, {"$unset": {"m": "", "mt": ""}})
            parts.delete_many({"merge": merge_id})
            return 0
        self._insert_skipping("part_merges", [{"_id": merge_id, "tenant": tenant, "res": res, "at": now}])
        parts.delete_many({"_id": {"$in": sources}, "m": merge_id})
        return len(sources)
