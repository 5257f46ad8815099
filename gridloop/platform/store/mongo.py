"""Store on MongoDB (tested against FerretDB v1.24): hourly reading buckets, rollups, registry, commands.

Written for what FerretDB v1 supports: no time-series or TTL collections, no nested arrays, no '.'
or '$' in field names (quantities are stored as lists of {k, v}), plain upserts with $inc/$min/$max.

Several platform replicas may share one database. MongoDB applies each update to one document atomically
(filter and change together), which is all the conditional writes here need: a reading bucket guarded by
``k: {$nin: ...}``, a command's status step, a lease. FerretDB v1 does not: it reads the matching documents,
then writes them back, so two processes updating one document can lose one update. On FerretDB the store
therefore also serialises its read-modify-write steps across processes with a lock document
(``locks._id: "writer"``, inserted to take it: an insert of an existing _id fails atomically there too).
On MongoDB, upserts of readings and rollups also filter on the shard key {tenant, dev} (deploy/mongo-shard.js).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pymongo
from bson import Binary
from pymongo.errors import DuplicateKeyError

from gridloop.platform.envelope import Event, Reading
from gridloop.platform.rollups import RESOLUTIONS, RollupBucket, compute_rollups
from gridloop.platform.store.base import (
    COMMAND_STEPS,
    OWNER_CACHE_S,
    AssetRecord,
    CommandRecord,
    DeviceRecord,
    StoredReading,
    command_step_allowed,
    hash_key,
    new_api_key,
)

BUCKET_MS = 3_600_000  # one readings document per (tenant, meter, hour)
OPEN_STATUSES = ["pending", "sent", "accepted"]
DUPLICATE_KEY = 11000
MAX_RETRIES = 20
UPDATE_CHUNK = 50
DAY_MS = 86_400_000  # FerretDB v1.24 (SQLite) hangs on one update command with ~100 statements
WRITE_LOCK_TTL_MS = 3_000  # FerretDB only: a crashed holder's lock is taken over after this long
WRITE_LOCK_RENEW_S = 1.0  # a holder in a long write renews it this often (between update chunks)
WRITE_LOCK_WAIT_S = 60.0


def encode_field(name: str) -> str:
    """A quantity name made safe as a field name (no '.', no '$'), reversibly."""
    return name.replace("%", "%25").replace(".", "%2E").replace("$", "%24") or "%"


def _reading_bucket_id(tenant: str, dev: str, hour: int) -> str:
    return f"{tenant}|{dev}|{hour}"


class MongoStore:
    """The MongoDB backend; the database is the URI's path (``mongodb://host:port/db``)."""

    def __init__(self, uri: str) -> None:
        self._client: pymongo.MongoClient = pymongo.MongoClient(uri, tz_aware=True)
        self.db = self._client.get_default_database()
        self._lock = threading.RLock()  # one writer at a time per process: keeps read-then-write cheap
        self._owners: dict[str, tuple[str, float]] = {}  # device -> (tenant, time.monotonic() looked up)
        # FerretDB: its updates are not atomic per document, so writers of all processes take turns; it does not
        # shard either, and a filter on more than _id makes its updates much slower (no push-down)
        self._ferretdb = "ferretdbVersion" in self._client.admin.command("buildInfo")
        self._serialise = self._ferretdb
        self._token = uuid.uuid4().hex
        self._depth = 0  # nesting of _writing() in the thread holding self._lock
        self._locked_at = 0.0
        self._create_indexes()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A read-modify-write step: one at a time in this process, and on FerretDB in all processes."""
        with self._lock:
            if self._serialise and self._depth == 0:
                self._take_write_lock()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._serialise and self._depth == 0:
                    self.db.locks.delete_one({"_id": "writer", "holder": self._token})

    def _by_id(self, doc_id: str, tenant: str, dev: str) -> dict[str, Any]:
        """Filter on a document's _id, with the shard key (tenant, dev): a sharded cluster needs it for an upsert."""
        return {"_id": doc_id} if self._ferretdb else {"_id": doc_id, "tenant": tenant, "dev": dev}

    def _shard_key_on_insert(self, tenant: str, dev: str) -> dict[str, str]:
        """What an upsert must set besides its filter's fields (with the shard key in the filter, nothing)."""
        return {"tenant": tenant, "dev": dev} if self._ferretdb else {}

    def _take_write_lock(self) -> None:
        deadline = time.monotonic() + WRITE_LOCK_WAIT_S
        while True:
            now = time.time_ns() // 1_000_000
            try:
                self.db.locks.insert_one({"_id": "writer", "holder": self._token, "until": now + WRITE_LOCK_TTL_MS})
                self._locked_at = time.monotonic()
                return
            except DuplicateKeyError:
                held = self.db.locks.find_one({"_id": "writer"})
                if held is not None and held.get("until", 0) < now:  # its holder died: take it over
                    self.db.locks.delete_one({"_id": "writer", "holder": held["holder"]})
                    continue
            if time.monotonic() > deadline:
                raise RuntimeError("the store's write lock stayed taken for 60 s")
            time.sleep(0.002)

    def _keep_write_lock(self) -> None:
        """Renew the lock in a long write (between chunks), so that nobody takes it over as a dead one."""
        if self._serialise and self._depth and time.monotonic() - self._locked_at > WRITE_LOCK_RENEW_S:
            self.db.locks.update_one({"_id": "writer", "holder": self._token},
                                     {"$set": {"until": time.time_ns() // 1_000_000 + WRITE_LOCK_TTL_MS}})
            self._locked_at = time.monotonic()

    def _create_indexes(self) -> None:
        db = self.db
        db.tenants.create_index("key_hash", unique=True)
        db.devices.create_index([("tenant", 1), ("_id", 1)])
        db.assets.create_index([("tenant", 1), ("id", 1)])
        db.readings.create_index([("tenant", 1), ("dev", 1), ("h", 1)])
        db.events.create_index([("tenant", 1), ("dev", 1), ("ts", 1)])
        db.rejected.create_index("tenant")
        db.commands.create_index("status")
        db.rollups.create_index([("tenant", 1), ("dev", 1), ("res", 1), ("b", 1)])

    # -- tenants
    def create_tenant(self, name: str) -> str:
        key = new_api_key()
        try:
            self.db.tenants.insert_one({"_id": name, "key_hash": hash_key(key)})
        except DuplicateKeyError:
            raise ValueError(f"tenant {name!r} exists already") from None
        return key

    def tenant_of_key(self, api_key: str) -> str | None:
        doc = self.db.tenants.find_one({"key_hash": hash_key(api_key)})
        return doc["_id"] if doc else None

    def tenant_exists(self, name: str) -> bool:
        return self.db.tenants.find_one({"_id": name}) is not None

    # -- registry
    def put_devices(self, devices: list[DeviceRecord]) -> None:
        """New devices are inserted in bulk (cheap on FerretDB); known ones are updated, keeping their status."""
        with self._writing():
            # ownership from the store, not the cache: another replica may have deleted or created the id
            owners = {doc["_id"]: doc["tenant"] for doc in
                      self.db.devices.find({"_id": {"$in": [d.id for d in devices]}}, {"tenant": 1})}
            taken = [d.id for d in devices if owners.get(d.id) not in (None, d.tenant)]
            if taken:
                raise ValueError(f"device id(s) already used by another tenant: {', '.join(taken[:5])}")
            fields = [
                (d, {"tenant": d.tenant, "type": d.type, "phases": d.phases, "gateway": d.gateway, "asset": d.asset,
                     "meta": orjson.dumps(d.meta).decode()})
                for d in devices
            ]
            fresh = {d.id: {"_id": d.id, **f, "status": d.status} for d, f in fields if d.id not in owners}
            if fresh:
                self._insert("devices", list(fresh.values()))
            # the tenant in the filter: an id another replica just gave to another tenant fails on its _id
            known = [(d, f) for d, f in fields if d.id in owners]
            failed = self._update("devices", [{"q": {"_id": d.id, "tenant": d.tenant}, "u": {"$set": f},
                                               "upsert": True} for d, f in known]) if known else set()
            lost = [known[i][0].id for i in sorted(failed)]
            if fresh:  # an insert that met an existing _id was skipped: whose is it now?
                lost += [doc["_id"] for doc in self.db.devices.find({"_id": {"$in": list(fresh)}}, {"tenant": 1})
                         if doc["tenant"] != fresh[doc["_id"]]["tenant"]]
            if lost:
                raise ValueError(f"device id(s) already used by another tenant: {', '.join(lost[:5])}")
            now = time.monotonic()
            for d in devices:
                self._owners[d.id] = (d.tenant, now)

    @staticmethod
    def _device(doc: dict) -> DeviceRecord:
        return DeviceRecord(
            tenant=doc["tenant"], id=doc["_id"], type=doc["type"], phases=doc["phases"], gateway=doc.get("gateway"),
            asset=doc.get("asset"), status=doc.get("status", "unknown"), meta=orjson.loads(doc.get("meta", "{}")),
        )

    def get_device(self, tenant: str, device: str) -> DeviceRecord | None:
        doc = self.db.devices.find_one({"_id": device, "tenant": tenant})
        return self._device(doc) if doc else None

    def list_devices(self, tenant: str) -> list[DeviceRecord]:
        return [self._device(d) for d in self.db.devices.find({"tenant": tenant}).sort("_id", 1)]

    def delete_device(self, tenant: str, device: str) -> bool:
        with self._lock:
            n = self.db.devices.delete_one({"_id": device, "tenant": tenant}).deleted_count
            self._owners.pop(device, None)
        return n > 0

    def owner_of(self, device: str) -> str | None:
        """The device's tenant; cached at most OWNER_CACHE_S (a change through another replica shows by then)."""
        cached = self._owners.get(device)
        now = time.monotonic()
        if cached is not None and now - cached[1] < OWNER_CACHE_S:
            return cached[0]
        doc = self.db.devices.find_one({"_id": device}, {"tenant": 1})
        if doc is None:
            self._owners.pop(device, None)
            return None
        self._owners[device] = (doc["tenant"], now)
        return doc["tenant"]

    def set_device_status(self, tenant: str, device: str, status: str) -> None:
        with self._writing():
            self.db.devices.update_one({"_id": device, "tenant": tenant}, {"$set": {"status": status}})

    def put_asset(self, asset: AssetRecord) -> None:
        with self._writing():
            self.db.assets.replace_one(
                {"_id": f"{asset.tenant}|{asset.id}"},
                {"tenant": asset.tenant, "id": asset.id, "kind": asset.kind, "name": asset.name,
                 "parent": asset.parent},
                upsert=True,
            )

    @staticmethod
    def _asset(doc: dict) -> AssetRecord:
        return AssetRecord(doc["tenant"], doc["id"], doc["kind"], doc.get("name", ""), doc.get("parent"))

    def get_asset(self, tenant: str, asset: str) -> AssetRecord | None:
        doc = self.db.assets.find_one({"_id": f"{tenant}|{asset}"})
        return self._asset(doc) if doc else None

    def list_assets(self, tenant: str) -> list[AssetRecord]:
        return [self._asset(d) for d in self.db.assets.find({"tenant": tenant}).sort("id", 1)]

    # -- raw write commands (FerretDB's partial bulk results trip pymongo's bulk_write, so read them ourselves)
    def _update(self, collection: str, updates: list[dict]) -> set[int]:
        """Run updates unordered; the indexes of those that failed on a duplicate key (others raise)."""
        failed: set[int] = set()
        for off in range(0, len(updates), UPDATE_CHUNK):
            self._keep_write_lock()
            chunk = updates[off:off + UPDATE_CHUNK]
            reply = self.db.command({"update": collection, "updates": chunk, "ordered": False})
            for err in reply.get("writeErrors", []):
                if err.get("code") != DUPLICATE_KEY:
                    raise pymongo.errors.OperationFailure(err.get("errmsg", str(err)), err.get("code"))
                failed.add(off + err["index"])
        return failed

    def _insert(self, collection: str, docs: list[dict]) -> int:
        """Insert unordered, skipping documents whose _id exists; the number inserted."""
        inserted = 0
        for off in range(0, len(docs), 500):
            self._keep_write_lock()
            chunk = docs[off:off + 500]
            reply = self.db.command({"insert": collection, "documents": chunk, "ordered": False})
            dupes = 0
            for err in reply.get("writeErrors", []):
                if err.get("code") != DUPLICATE_KEY:
                    raise pymongo.errors.OperationFailure(err.get("errmsg", str(err)), err.get("code"))
                dupes += 1
            inserted += len(chunk) - dupes
        return inserted

    # -- data
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

    def _add_rollups(self, tenant: str, readings: list[Reading]) -> None:
        """One upsert per (device, resolution, bucket) carrying every quantity: FerretDB updates are costly."""
        docs: dict[tuple[str, str, int], dict[str, dict]] = {}
        for (dev, q, res, start), b in compute_rollups(readings).items():
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
        self, tenant: str, device: str, start: int | None, end: int | None, kind: str | None
    ) -> list[Event]:
        flt: dict[str, Any] = {"tenant": tenant, "dev": device,
                               "ts": {"$gte": -1 if start is None else start, "$lt": 2**62 if end is None else end}}
        if kind:
            flt["type"] = kind
        docs = self.db.events.find(flt).sort([("ts", 1), ("type", 1)])
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

    # -- retention
    def apply_retention(
        self, tenant: str, raw_days: float | None = None, rollup_days: dict[str, float] | None = None,
        batch: int = 500, now: int | None = None,
    ) -> dict[str, int]:
        """Delete the tenant's readings older than ``raw_days`` (in whole hourly documents) and rollup buckets
        that ended more than ``rollup_days[res]`` ago, ``batch`` documents per delete command."""
        now = now if now is not None else time.time_ns() // 1_000_000
        deleted: dict[str, int] = {}
        if raw_days is not None:
            cutoff = now - int(raw_days * DAY_MS)
            deleted["raw"] = self._delete_in_batches(
                "readings", {"tenant": tenant, "h": {"$lte": cutoff - BUCKET_MS}}, batch, count_field="n")
        for res, days in (rollup_days or {}).items():
            cutoff = now - int(days * DAY_MS) - RESOLUTIONS[res]
            deleted[res] = self._delete_in_batches(
                "rollups", {"tenant": tenant, "res": res, "b": {"$lte": cutoff}}, batch, count_field="s")
        return deleted

    def _delete_in_batches(self, collection: str, query: dict, batch: int, count_field: str) -> int:
        """Delete matching documents ``batch`` at a time; counts readings (field n) or rollup buckets (per quantity)."""
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

    # -- commands
    def put_command(self, command: CommandRecord) -> None:
        c = command
        self.db.commands.insert_one({
            "_id": f"{c.tenant}|{c.id}", "tenant": c.tenant, "id": c.id, "device": c.device, "name": c.name,
            "args": orjson.dumps(c.args).decode(), "ts": c.ts, "expires": c.expires, "status": c.status,
            "detail": c.detail, "updated": c.updated, "history": [{"s": s, "t": t} for s, t in c.history],
        })

    @staticmethod
    def _command(d: dict) -> CommandRecord:
        return CommandRecord(
            tenant=d["tenant"], id=d["id"], device=d["device"], name=d["name"], args=orjson.loads(d["args"]),
            ts=d["ts"], expires=d.get("expires"), status=d["status"], detail=d.get("detail", ""),
            updated=d.get("updated", 0), history=[[h["s"], h["t"]] for h in d.get("history", [])],
        )

    def get_command(self, tenant: str, command_id: str) -> CommandRecord | None:
        doc = self.db.commands.find_one({"_id": f"{tenant}|{command_id}"})
        return self._command(doc) if doc else None

    def update_command(
        self, tenant: str, command_id: str, status: str, detail: str, ts: int, *, expect_updated: int | None = None
    ) -> bool:
        """One conditional update_one (atomic per document): only from a status ``status`` may follow."""
        if status not in COMMAND_STEPS:
            raise ValueError(f"unknown command status {status!r}")
        same = expect_updated is not None
        prior = [s for s in (*COMMAND_STEPS, status) if command_step_allowed(s, status, same)]
        if not prior:
            return False
        flt: dict[str, Any] = {"_id": f"{tenant}|{command_id}", "status": {"$in": sorted(set(prior))}}
        if expect_updated is not None:
            flt["updated"] = expect_updated
            ts = max(ts, expect_updated + 1)
        with self._writing():
            res = self.db.commands.update_one(
                flt, {"$set": {"status": status, "detail": detail, "updated": ts},
                      "$push": {"history": {"s": status, "t": ts}}},
            )
        return res.matched_count > 0  # the filter holds the condition: matched means moved

    def open_commands(self) -> list[CommandRecord]:
        return [self._command(d) for d in self.db.commands.find({"status": {"$in": OPEN_STATUSES}}).sort("ts", 1)]

    # -- leases
    def acquire_lease(self, name: str, holder: str, ttl_ms: int, now: int | None = None) -> bool:
        now = now if now is not None else time.time_ns() // 1_000_000
        until = now + ttl_ms
        with self._writing():
            return self._acquire_lease(name, holder, until, now)

    def _acquire_lease(self, name: str, holder: str, until: int, now: int) -> bool:
        try:
            if self.db.leases.update_one({"_id": name, "holder": holder}, {"$set": {"until": until}}).matched_count:
                return True  # renewed
            res = self.db.leases.update_one({"_id": name, "until": {"$lt": now}},
                                            {"$set": {"holder": holder, "until": until}})
            if res.matched_count:
                return True  # taken over an expired one
            self.db.leases.insert_one({"_id": name, "holder": holder, "until": until})
            return True  # the first holder
        except DuplicateKeyError:
            return False  # someone else holds it, unexpired

    def release_lease(self, name: str, holder: str) -> None:
        with self._writing():
            self.db.leases.delete_one({"_id": name, "holder": holder})

    def close(self) -> None:
        self._client.close()
