"""Readings written as insert-only chunks (chunks.py), each reading claimed once by a key document; events and
rejected messages.

A batch is written in three steps, each one command per collection however many readings it holds:

1. **Claim.** (MongoDB; on FerretDB, whose writers take turns, the stored chunks overlapping the batch in time
   are read instead, under the write lock: claims cost FerretDB more than the readings themselves.)
   Insert a key document per reading (``reading_keys``: ``_id`` ``tenant|dev|ts``, ``c`` its chunk's
   id). An insert of an existing _id fails atomically (on MongoDB and FerretDB alike), so each reading is claimed
   once whichever batch, replica or redelivery brings it.
2. **Settle** (only for readings whose claim existed). The claim names a chunk: if that chunk exists and holds the
   reading, the reading is stored already (a redelivery: it counts as stored for the acknowledgement, not as new);
   if the claim names this very chunk, it is this batch's own earlier attempt; otherwise the chunk was never
   written (its writer died between claim and chunk) and this batch takes the claim over.
3. **Chunk.** Insert the chunk documents. Their ids are deterministic, so a chunk that exists is this batch's
   earlier attempt: stored.

The chunks are folded into the rollups later, every few seconds (rollups.py: materialize_rollups); queries add
what is not folded yet. The readings are durable (write concern majority and journaled on MongoDB) before
insert_readings returns, and ingest acknowledges only then.
"""

from __future__ import annotations

import time

import orjson
from bson import Binary

from gridloop.platform.envelope import Event, Reading
from gridloop.platform.store.errors import StoreUnavailable
from gridloop.platform.store.mongo.chunks import ChunkColumns, ChunkPlan, plan_chunks
from gridloop.platform.store.mongo.rollups import MongoRollups

KEYS_PER_COMMAND = 10_000
ORPHAN_MS = 60_000  # MongoDB: a claim without its chunk is taken over only this old (its writer may be running)


class ClaimConflict(StoreUnavailable):
    """Another writer holds claims of this batch right now; the batch is not acknowledged and comes again (an
    outage to ingest, retried; not refused data, which ingest would quarantine and acknowledge)."""


class MongoReadings(MongoRollups):
    """Readings in chunk documents with a key document per reading; events; rejected messages."""

    def insert_readings(self, tenant: str, readings: list[Reading]) -> int:
        """Store readings not stored yet (by (dev, ts)); exactly those update the rollups. Returns how many."""
        plans = plan_chunks(tenant, readings)
        if not plans:
            return 0
        with self._writing():
            return self._store_chunks(tenant, plans, fold=True)

    def _store_chunks(self, tenant: str, plans: list[ChunkPlan], fold: bool) -> int:
        """Claim, settle, insert the chunks (to be folded into the rollups, or with ``fold`` False marked folded
        already); how many readings were new."""
        if self._claims:
            now = time.time_ns() // 1_000_000
            claims = [{"_id": k, "c": p.id, "at": now} for p in plans for k in p.keys]
            taken = self._insert_skipping("reading_keys", claims, KEYS_PER_COMMAND)
            if taken:
                plans = self._settle(tenant, plans, {claims[i]["_id"] for i in taken}, now)
        else:
            plans = self._without_stored(tenant, plans)
        if not plans:
            return 0
        docs = [p.document() for p in plans]
        if not fold:
            for d in docs:
                d["rolled"] = True
        existed = {docs[i]["_id"] for i in self._insert_skipping("chunks", docs, 20)}
        if not self._serialise:
            self._check_claims_kept(plans, existed)
        return sum(len(p.readings) for p in plans if p.id not in existed)  # existed: an earlier attempt's

    def _without_stored(self, tenant: str, plans: list[ChunkPlan]) -> list[ChunkPlan]:
        """FerretDB (writers of all processes take turns, connection.py): the plans without the readings that the
        stored chunks overlapping the batch in time hold, read under the write lock instead of claimed."""
        rows = [r for p in plans for r in p.readings]
        lo, hi = min(r.ts for r in rows), max(r.ts for r in rows)
        devs = sorted({r.dev for r in rows})
        flt: dict = {"tenant": tenant, "t0": {"$lte": hi}, "t1": {"$gte": lo}}
        if len(devs) <= 100:
            flt["devs"] = {"$in": devs}
        stored: set[str] = set()
        for doc in self.db.chunks.find(flt, {"q": 0, "v": 0, "seq": 0}):
            stored.update(ChunkColumns.of(doc).keys(tenant, lo, hi))
        if not stored:
            return plans
        kept = [p.keep(set(p.keys) - stored) for p in plans]
        return [p for p in kept if p.readings]

    def _settle(self, tenant: str, plans: list[ChunkPlan], taken: set[str], now: int) -> list[ChunkPlan]:
        """The plans without the readings stored already, their claims pointing at the (new) chunk ids."""
        claim = {d["_id"]: d for d in self.db.reading_keys.find({"_id": {"$in": list(taken)}})}
        if len(claim) < len(taken):
            raise ClaimConflict("reading claims changed while being read (retention?); will be redelivered")
        chunk_of = {k: p.id for p in plans for k in p.keys if k in taken}
        foreign = {claim[k]["c"] for k in taken if claim[k]["c"] != chunk_of[k]}
        holds: dict[str, set[str]] = {}
        for doc in self.db.chunks.find({"_id": {"$in": list(foreign)}}, {"q": 0, "v": 0, "seq": 0}):
            holds[doc["_id"]] = set(ChunkColumns.of(doc).keys(tenant))
        stored, orphans = set(), {}
        for k in taken:
            c = claim[k]["c"]
            if c == chunk_of[k]:
                continue
            if k in holds.get(c, ()):
                stored.add(k)
            else:
                orphans[k] = c
        if orphans and not self._serialise and any(now - claim[k].get("at", 0) < ORPHAN_MS for k in orphans):
            raise ClaimConflict("another writer is storing some of these readings; will be redelivered")
        out = []
        for plan in plans:
            kept = plan.keep(set(plan.keys) - stored) if stored & set(plan.keys) else plan
            if not kept.readings:
                continue
            expected = {plan.id} | {orphans[k] for k in kept.keys if k in orphans}
            if expected != {kept.id}:
                res = self.db.reading_keys.update_many({"_id": {"$in": kept.keys}, "c": {"$in": sorted(expected)}},
                                                       {"$set": {"c": kept.id, "at": now}})
                if res.matched_count != len(kept.keys):
                    raise ClaimConflict("claims were taken by another writer meanwhile; will be redelivered")
            out.append(kept)
        return out

    def _check_claims_kept(self, plans: list[ChunkPlan], existed: set[str]) -> None:
        """MongoDB (writers not serialised): a writer that stalled past ORPHAN_MS between claim and chunk may have
        had its claims taken over; then its chunk goes again and the batch is redelivered (stored once)."""
        for plan in plans:
            if self.db.reading_keys.find_one({"_id": {"$in": plan.keys}, "c": {"$ne": plan.id}}, {"_id": 1}):
                if plan.id not in existed:
                    self.db.chunks.delete_one({"_id": plan.id})
                raise ClaimConflict("this batch's claims were taken over while it stalled; will be redelivered")

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

    def count_rejected(self, tenant: str | None) -> int:
        return self.db.rejected.count_documents({"tenant": tenant})
