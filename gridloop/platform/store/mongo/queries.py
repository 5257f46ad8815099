"""What the API reads back from MongoDB: raw readings from the chunks, events, counts."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from gridloop.platform.envelope import Event
from gridloop.platform.store.mongo.chunks import ChunkColumns
from gridloop.platform.store.mongo.connection import MongoBase
from gridloop.platform.store.records import StoredReading

FAR = 2**62


class MongoQueries(MongoBase):
    """Readings of a device (the chunks that list it, by time), events, counts per tenant and device."""

    def query_readings(
        self, tenant: str, device: str, start: int | None, end: int | None, limit: int
    ) -> list[StoredReading]:
        """The first ``limit`` readings in [start, end), by ts. Chunks come by their first ts; once ``limit``
        readings are found, a chunk starting after the last of them cannot change the answer."""
        lo = -1 if start is None else start
        hi = FAR if end is None else end
        out: list[StoredReading] = []
        cursor = self.db.chunks.find({"tenant": tenant, "devs": device, "t0": {"$lt": hi}, "t1": {"$gte": lo}}
                                     ).sort("t0", 1)
        for doc in cursor:
            if len(out) >= limit and doc["t0"] > out[limit - 1].ts:
                cursor.close()
                break
            out.extend(StoredReading(ts, seq, q) for ts, seq, q in ChunkColumns.of(doc).rows_of(device, lo, hi))
            if len(out) >= limit:
                out.sort(key=lambda r: r.ts)
                del out[limit:]
        out.sort(key=lambda r: r.ts)
        return out[:limit]

    def query_events(
        self, tenant: str, device: str, start: int | None, end: int | None, kind: str | None, limit: int | None = None
    ) -> list[Event]:
        flt: dict[str, Any] = {"tenant": tenant, "dev": device,
                               "ts": {"$gte": -1 if start is None else start, "$lt": FAR if end is None else end}}
        if kind:
            flt["type"] = kind
        docs = self.db.events.find(flt).sort([("ts", 1), ("type", 1)]).limit(limit or 0)
        return [Event(d["dev"], d["ts"], d["type"], d["severity"], orjson.loads(d["data"])) for d in docs]

    def count_readings(self, tenant: str) -> int:
        rows = list(self.db.chunks.aggregate(
            [{"$match": {"tenant": tenant}}, {"$group": {"_id": None, "n": {"$sum": "$n"}}}]
        ))
        return int(rows[0]["n"]) if rows else 0

    def readings_per_device(self, tenant: str, start: int | None, end: int | None) -> dict[str, int]:
        lo = -1 if start is None else start
        hi = FAR if end is None else end
        out: dict[str, int] = {}
        for doc in self.db.chunks.find({"tenant": tenant, "t0": {"$lt": hi}, "t1": {"$gte": lo}},
                                       {"q": 0, "v": 0, "seq": 0}):
            cols = ChunkColumns.of(doc)
            inside = (cols.ts >= lo) & (cols.ts < hi)
            counts = np.bincount(cols.di[inside], minlength=len(cols.devs))
            for dev, n in zip(cols.devs, counts.tolist(), strict=True):
                if n:
                    out[dev] = out.get(dev, 0) + n
        return out
