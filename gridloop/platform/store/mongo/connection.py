"""Store on MongoDB (tested against FerretDB v1.24): reading chunks (chunks.py), rollups, registry, commands.

Written for what FerretDB v1 supports: no time-series or TTL collections, no nested arrays, no '.'
or '$' in field names (quantities are stored as lists of {k, v}), plain upserts with $inc/$min/$max.

Several platform replicas may share one database. MongoDB applies each update to one document atomically
(filter and change together), and an insert of an existing _id fails atomically, which is all the conditional
writes here need: a reading's key document (its claim, readings.py), a command's status step, a lease. FerretDB
v1 updates are not atomic: it reads the matching documents, then writes them back, so two processes updating
one document can lose one update. On FerretDB the store therefore also serialises its read-modify-write steps
across processes with a lock built only on inserts of unique _ids, the one write FerretDB v1 does atomically
(``writer_lock.GenerationLock``).
The shard keys: deploy/mongo-shard.js.

Layout (MONGO_LAYOUT, kept in ``store_info``): 1 global device ids; 2 devices keyed by (tenant, id), readings in
hourly documents upserted per reading; 3 readings in insert-only chunk documents (chunks.py). ``gridloop platform
migrate`` brings an older database to 3 (migrate.py).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymongo
from pymongo import WriteConcern
from pymongo.errors import DuplicateKeyError

from gridloop.platform.store.errors import WriteLockBusy, WriteLockLost
from gridloop.platform.store.layout import LAYOUT_KEY, StoreLayoutError
from gridloop.platform.store.mongo.writer_lock import GenerationLock
from gridloop.platform.store.registry_cache import RegistryCache

MONGO_LAYOUT = 3  # this backend's own layout number (the SQLite store has its own: store/layout.py)
DUPLICATE_KEY = 11000
UPDATE_CHUNK = 50  # FerretDB v1.24 (SQLite) hangs on one update command with ~100 statements
WRITE_LOCK_TTL_MS = 3_000  # FerretDB only: a crashed holder's lock is taken over after this long
WRITE_LOCK_RENEW_S = 1.0  # a holder in a long write renews it this often (between update chunks)
WRITE_LOCK_WAIT_S = 60.0


class MongoBase:
    """The client, the write serialisation every part uses, and raw write commands that report duplicates."""

    def __init__(self, uri: str, migrate: bool = False) -> None:
        """``migrate``: bring a database of an older layout to this one (gridloop platform migrate)."""
        self._client: pymongo.MongoClient = pymongo.MongoClient(uri, tz_aware=True)
        self.db = self._client.get_default_database()
        self._ferretdb = "ferretdbVersion" in self._client.admin.command("buildInfo")
        if not self._ferretdb and self.db.write_concern.is_server_default:
            # durable before acknowledgement: on a replica set, written to a majority and journaled (a URI's own
            # w=/journal= options are kept as given)
            self.db = self._client.get_default_database(write_concern=WriteConcern(w="majority", j=True))
        self._write_concern = self.db.write_concern.document  # raw write commands carry it too
        self._lock = threading.RLock()  # one writer at a time per process: keeps read-then-write cheap
        self._registered = RegistryCache()
        # FerretDB: its updates are not atomic per document, so writers of all processes take turns; it does not
        # shard either, and a filter on more than _id makes its updates much slower (no push-down)
        self._serialise = self._ferretdb
        # merge closed hours' rollup parts after each fold (part_compaction.py); off on FerretDB, where a merge's
        # collection scans cost ~2 s under the write lock and did not make its queries faster (docs/store.md)
        self.compact_parts = not self._ferretdb
        # readings are claimed by a key document each (readings.py) where writers do not take turns
        self._claims = not self._serialise
        self._token = uuid.uuid4().hex
        self._depth = 0  # nesting of _writing() in the thread holding self._lock
        self.layout = MONGO_LAYOUT
        self._writer_lock = GenerationLock(self.db.locks, self._token, WRITE_LOCK_TTL_MS)
        found = self._layout()
        if found != MONGO_LAYOUT and not (migrate and found < MONGO_LAYOUT):
            self._client.close()
            raise StoreLayoutError(_redacted(uri), found, MONGO_LAYOUT)
        self._create_indexes()
        if found < MONGO_LAYOUT:
            self._migrate_from(found)
        with contextlib.suppress(DuplicateKeyError):  # a new database (a replica starting with it may be first)
            self.db.store_info.insert_one({"_id": LAYOUT_KEY, "value": MONGO_LAYOUT})

    def _layout(self) -> int:
        """This database's layout: MONGO_LAYOUT when new, 1 when it has devices or readings but no recorded layout."""
        doc = self.db.store_info.find_one({"_id": LAYOUT_KEY})
        if doc is not None:
            return int(doc["value"])
        used = any(self.db[c].find_one({}, {"_id": 1}) is not None for c in ("devices", "readings"))
        return 1 if used else MONGO_LAYOUT

    def _migrate_from(self, found: int) -> None:
        """Bring an older layout to this one (migrate.py implements the steps)."""
        raise NotImplementedError

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
                    self._writer_lock.release()

    def _take_write_lock(self) -> None:
        deadline = time.monotonic() + WRITE_LOCK_WAIT_S
        while not self._writer_lock.try_take():
            if time.monotonic() > deadline:
                raise WriteLockBusy(f"the store's write lock stayed taken for {WRITE_LOCK_WAIT_S:g} s")
            time.sleep(0.002)

    def _keep_write_lock(self) -> None:
        """Renew the lock in a long write (between chunks), so that nobody takes it over as a dead one. A holder
        that let it expire (a chunk slower than the TTL) goes on only if nobody took it over meanwhile; else it
        stops before writing more (WriteLockLost), and the write is retried whole (unacknowledged until then).
        Every renewal checks first that nobody holds a newer generation: a take-over is noticed at the next chunk
        after at most WRITE_LOCK_RENEW_S, whatever this holder's own clock says."""
        if not (self._serialise and self._depth) or self._writer_lock.held_for_s <= WRITE_LOCK_RENEW_S:
            return
        if not self._writer_lock.still_held():
            raise WriteLockLost("the store's write lock was taken over during a write; try again")
        self._writer_lock.renew()

    def _create_indexes(self) -> None:
        db = self.db
        db.tenants.create_index("key_hash", unique=True)
        db.devices.create_index([("tenant", 1), ("id", 1)])
        db.assets.create_index([("tenant", 1), ("id", 1)])
        db.chunks.create_index([("tenant", 1), ("devs", 1), ("t0", 1)])
        db.chunks.create_index([("tenant", 1), ("t0", 1)])
        db.chunks.create_index([("tenant", 1), ("rolled", 1)])
        db.rollup_parts.create_index([("tenant", 1), ("res", 1), ("devs", 1), ("b0", 1)])
        db.rollup_parts.create_index([("tenant", 1), ("res", 1), ("b1", 1)])
        db.events.create_index([("tenant", 1), ("dev", 1), ("ts", 1)])
        db.rejected.create_index("tenant")
        db.commands.create_index("status")
        db.rollups.create_index([("tenant", 1), ("dev", 1), ("res", 1), ("b", 1)])
        db.locks.create_index([("name", 1), ("gen", -1)])

    # -- raw write commands (FerretDB's partial bulk results trip pymongo's bulk_write, so read them ourselves)
    def _update(self, collection: str, updates: list[dict]) -> set[int]:
        """Run updates unordered; the indexes of those that failed on a duplicate key (others raise)."""
        return set(self._write_unordered("update", "updates", collection, updates, UPDATE_CHUNK))

    def _insert(self, collection: str, docs: list[dict]) -> int:
        """Insert unordered, skipping documents whose _id exists; the number inserted."""
        return len(docs) - len(self._insert_skipping(collection, docs))

    def _insert_skipping(self, collection: str, docs: list[dict], per_command: int = 500) -> list[int]:
        """Insert unordered; the indexes of the documents whose _id existed already (other errors raise)."""
        return self._write_unordered("insert", "documents", collection, docs, per_command)

    def _write_unordered(self, command: str, field: str, collection: str, items: list[dict],
                         per_command: int) -> list[int]:
        """Run a write command unordered, ``per_command`` items at a time; the indexes of the items that failed on
        a duplicate key (other errors raise)."""
        dupes: list[int] = []
        for off in range(0, len(items), per_command):
            self._keep_write_lock()
            reply = self.db.command({command: collection, field: items[off:off + per_command], "ordered": False,
                                     **self._concern()})
            _raise_on_write_concern(reply)
            for err in reply.get("writeErrors", []):
                if err.get("code") != DUPLICATE_KEY:
                    raise pymongo.errors.OperationFailure(err.get("errmsg", str(err)), err.get("code"))
                dupes.append(off + err["index"])
        return dupes

    def _concern(self) -> dict[str, Any]:
        return {"writeConcern": self._write_concern} if self._write_concern else {}

    def close(self) -> None:
        self._client.close()


def _redacted(uri: str) -> str:
    """The URI without its password (it goes into error messages)."""
    head, sep, tail = uri.partition("@")
    if not sep or "://" not in head:
        return uri
    scheme, _, userinfo = head.partition("://")
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{tail}"


def _raise_on_write_concern(reply: dict) -> None:
    """A write the server took but could not make durable (``ok: 1`` with ``writeConcernError``) is not stored."""
    if error := reply.get("writeConcernError"):
        raise pymongo.errors.WriteConcernError(error.get("errmsg", str(error)), error.get("code"), error)
