"""Readings in hourly bucket documents (their rollups folded in as they are stored), events and rejected messages."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
from bson import Binary

from gridloop.platform.envelope import Event, Reading
from gridloop.platform.store.mongo.connection import BUCKET_MS, MAX_RETRIES
from gridloop.platform.store.mongo.rollups import MongoRollups
from gridloop.platform.store.records import StoredReading


def _reading_bucket_id(tenant: str, dev: str, hour: int) -> str:
    return f"{tenant}|{dev}|{hour}"


class MongoReadings(MongoRollups):
    """Readings (one document per tenant, meter and hour; keys ``k``, samples ``s.<ts>``), events, rejections."""

    def insert_readings(self, tenant: str, readings: list[Reading]) -> int:
        """Store readings not stored yet (by (dev, ts)); exactly those update the rollups. Returns how many."""
        by_bucket: dict[tuple[str, int], dict[int, Reading]] = defaultdict(dict)
        for r in readings:
            by_bucket[(r.dev, r.ts - r.ts % BUCKET_MS)].setdefault(r.ts, r)
        new_readings: list[Reading] = []
        with self._writing():
            pending = dict(by_bucket)
            for _ in range(MAX_RETRIES):
                if not pending:
                    break
                pending, stored = self._store_buckets(tenant, pending)
                new_readings.extend(stored)
            if pending:
                raise RuntimeError("readings buckets kept changing under concurrent writers; will be redelivered")
            if new_readings:
                self._add_rollups(tenant, new_readings)
        return len(new_readings)

    def _store_buckets(
        self, tenant: str, buckets: dict[tuple[str, int], dict[int, Reading]]
    ) -> tuple[dict[tuple[str, int], dict[int, Reading]], list[Reading]]:
        """One optimistic round: add samples the buckets lack, guarded so a concurrent writer makes it retry."""
        ids = {_reading_bucket_id(tenant, dev, hour): (dev, hour) for dev, hour in buckets}
        existing = {
            doc["_id"]: set(doc.get("k", ()))
            for doc in self.db.readings.find(  # tenant and dev: on a sharded cluster, only their shards are asked
                {"tenant": tenant, "dev": {"$in": sorted({dev for dev, _ in buckets})}, "_id": {"$in": list(ids)}},
                {"k": 1})
        }
        updates, planned = [], []
        for bid, (dev, hour) in ids.items():
            have = existing.get(bid, set())
            new = [r for ts, r in buckets[(dev, hour)].items() if ts not in have]
            if not new:
                continue
            keys = [r.ts for r in new]
            samples = {
                f"s.{r.ts}": {"seq": r.seq, "q": [{"k": k, "v": v} for k, v in r.q.items()]} for r in new
            }
            updates.append({
                "q": {**self._by_id(bid, tenant, dev), "k": {"$nin": keys}},
                "u": {"$set": samples, "$push": {"k": {"$each": keys}}, "$inc": {"n": len(keys)},
                      "$setOnInsert": {"h": hour, **self._shard_key_on_insert(tenant, dev)}},
                "upsert": True,
            })
            planned.append(((dev, hour), new))
        if not updates:
            return {}, []
        failed = self._update("readings", updates)
        stored: list[Reading] = []
        retry: dict[tuple[str, int], dict[int, Reading]] = {}
        for i, (key, new) in enumerate(planned):
            if i in failed:  # someone else wrote to this bucket meanwhile: re-read and try again
                retry[key] = buckets[key]
            else:
                stored.extend(new)
        return retry, stored

    def insert_events(self, tenant: str, events: list[Event]) -> int:
        docs = [
            {"_id": f"{tenant}|{e.dev}|{e.ts}|{e.type}", "tenant": tenant, "dev": e.dev, "ts": e.ts, "type": e.type,
             "severity": e.severity, "data": orjson.dumps(e.data).decode()}
            for e in events
        ]
        return self._insert("events", docs) if docs else 0

    def add_rejected(self, tenant: str | None, topic: str, reason: str, payload: bytes) -> None:
        self.db.rejected.insert_one(
            {"tenant": tenant, "topic": topic, "reason": reason, "payload": Binary(payload[:65536])}
        )

    def add_rejected_many(self, rows: list[tuple[str | None, str, str, bytes]]) -> None:
        if rows:  # ordered: the oldest first, as one at a time would
            self.db.rejected.insert_many([{"tenant": t, "topic": topic, "reason": reason,
                                           "payload": Binary(payload[:65536])} for t, topic, reason, payload in rows])

    def rejected_reasons(self, tenant: str | None) -> list[str]:
        """Reasons of the rejected messages of a tenant, oldest first (for operators and tests)."""
        return [d["reason"] for d in self.db.rejected.find({"tenant": tenant}).sort("_id", 1)]

    def query_readings(
        self, tenant: str, device: str, start: int | None, end: int | None, limit: int
    ) -> list[StoredReading]:
        lo = -1 if start is None else start
        hi = 2**62 if end is None else end
        out: list[StoredReading] = []
        cursor = self.db.readings.find(
            {"tenant": tenant, "dev": device, "h": {"$gt": lo - BUCKET_MS, "$lt": hi}}
        ).sort("h", 1)
        for doc in cursor:
            for ts in sorted(t for t in doc.get("k", ()) if lo <= t < hi):
                sample = doc["s"][str(ts)]
                out.append(StoredReading(ts, sample.get("seq"), {p["k"]: p["v"] for p in sample["q"]}))
                if len(out) >= limit:
                    cursor.close()
                    return out
        return out

    def query_events(
        self, tenant: str, device: str, start: int | None, end: int | None, kind: str | None, limit: int | None = None
    ) -> list[Event]:
        flt: dict[str, Any] = {"tenant": tenant, "dev": device,
                               "ts": {"$gte": -1 if start is None else start, "$lt": 2**62 if end is None else end}}
        if kind:
            flt["type"] = kind
        docs = self.db.events.find(flt).sort([("ts", 1), ("type", 1)]).limit(limit or 0)
        return [Event(d["dev"], d["ts"], d["type"], d["severity"], orjson.loads(d["data"])) for d in docs]

    def count_readings(self, tenant: str) -> int:
        rows = list(self.db.readings.aggregate(
            [{"$match": {"tenant": tenant}}, {"$group": {"_id": None, "n": {"$sum": "$n"}}}]
        ))
        return int(rows[0]["n"]) if rows else 0

    def count_rejected(self, tenant: str | None) -> int:
        return self.db.rejected.count_documents({"tenant": tenant})

    def readings_per_device(self, tenant: str, start: int | None, end: int | None) -> dict[str, int]:
        lo = -1 if start is None else start
        hi = 2**62 if end is None else end
        out: dict[str, int] = {}
        for doc in self.db.readings.find(
            {"tenant": tenant, "h": {"$gt": lo - BUCKET_MS, "$lt": hi}}, {"dev": 1, "h": 1, "n": 1, "k": 1}
        ):
            if lo <= doc["h"] and doc["h"] + BUCKET_MS <= hi:
                n = doc.get("n", 0)
            else:
                n = sum(1 for t in doc.get("k", ()) if lo <= t < hi)
            if n:
                out[doc["dev"]] = out.get(doc["dev"], 0) + n
        return out
