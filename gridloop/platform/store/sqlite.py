"""Embedded store on SQLite: one file, WAL journal, every write batched and committed before it is acknowledged.

Several processes (platform replicas on one host or a shared volume) may open the same file: every write
transaction starts with BEGIN IMMEDIATE (it waits for the write lock instead of failing on a stale read
snapshot), and read-check-write steps (command status, device ownership, leases) run inside one.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from itertools import repeat
from operator import itemgetter
from pathlib import Path

import orjson

from gridloop.platform.envelope import Event, Reading
from gridloop.platform.rollups import RESOLUTIONS, RollupBucket, rollup_rows
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

SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, type TEXT NOT NULL, phases INTEGER NOT NULL,
    gateway TEXT, asset TEXT, status TEXT NOT NULL DEFAULT 'unknown', meta TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS devices_tenant ON devices (tenant, id);
CREATE TABLE IF NOT EXISTS assets (
    tenant TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, parent TEXT,
    PRIMARY KEY (tenant, id));
CREATE TABLE IF NOT EXISTS readings (
    tenant TEXT NOT NULL, dev TEXT NOT NULL, ts INTEGER NOT NULL, seq INTEGER, q BLOB NOT NULL,
    PRIMARY KEY (tenant, dev, ts)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    tenant TEXT NOT NULL, dev TEXT NOT NULL, ts INTEGER NOT NULL, type TEXT NOT NULL,
    severity TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (tenant, dev, ts, type)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY, tenant TEXT, topic TEXT NOT NULL, reason TEXT NOT NULL, payload BLOB);
CREATE INDEX IF NOT EXISTS rejected_tenant ON rejected (tenant);
CREATE TABLE IF NOT EXISTS commands (
    tenant TEXT NOT NULL, id TEXT NOT NULL, device TEXT NOT NULL, name TEXT NOT NULL, args BLOB NOT NULL,
    ts INTEGER NOT NULL, expires INTEGER, status TEXT NOT NULL, detail TEXT NOT NULL, updated INTEGER NOT NULL,
    history BLOB NOT NULL, PRIMARY KEY (tenant, id));
CREATE INDEX IF NOT EXISTS commands_open ON commands (status);
CREATE TABLE IF NOT EXISTS rollups (
    tenant TEXT NOT NULL, dev TEXT NOT NULL, q TEXT NOT NULL, res INTEGER NOT NULL, b INTEGER NOT NULL,
    n INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
    fts INTEGER NOT NULL, fv REAL NOT NULL, lts INTEGER NOT NULL, lv REAL NOT NULL,
    PRIMARY KEY (tenant, dev, q, res, b)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until INTEGER NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS batch_k (dev TEXT NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (dev, ts)) WITHOUT ROWID;
"""

BY_DEV_TS = itemgetter(1, 2)  # never compares seq or q: equal keys in one batch must not raise
BY_ROLLUP_KEY = itemgetter(1, 2, 3, 4)
INSERT_READING_SQL = "INSERT OR IGNORE INTO readings VALUES (?,?,?,?,?)"
# the batch's contribution to one bucket (computed in numpy, rollups.rollup_rows) folded into the stored bucket
UPSERT_ROLLUP_SQL = """
INSERT INTO rollups (tenant, dev, q, res, b, n, sum, min, max, fts, fv, lts, lv) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (tenant, dev, q, res, b) DO UPDATE SET
    n = n + excluded.n, sum = sum + excluded.sum, min = min(min, excluded.min), max = max(max, excluded.max),
    fv = CASE WHEN excluded.fts < fts THEN excluded.fv ELSE fv END, fts = min(fts, excluded.fts),
    lv = CASE WHEN excluded.lts > lts THEN excluded.lv ELSE lv END, lts = max(lts, excluded.lts)
"""

OPEN_STATUSES = ("pending", "sent", "accepted")
DAY_MS = 86_400_000


class SqliteStore:
    """The default store; safe to share between the API, ingest and dispatch threads."""

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA page_size=16384")  # a new file only: fewer, fuller B-tree pages per batch
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("PRAGMA temp_store=MEMORY")  # the per-batch staging tables never touch the disk
        self._db.execute("PRAGMA cache_size=-65536")  # 64 MiB: rollup upserts touch many pages
        self._db.executescript(SCHEMA)
        self._owners: dict[str, tuple[str, float]] = {}  # device -> (tenant, time.monotonic() looked up)

    # -- tenants
    def create_tenant(self, name: str) -> str:
        key = new_api_key()
        with self._lock:
            try:
                self._db.execute("INSERT INTO tenants VALUES (?, ?)", (name, hash_key(key)))
            except sqlite3.IntegrityError:
                raise ValueError(f"tenant {name!r} exists already") from None
        return key

    def tenant_of_key(self, api_key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT name FROM tenants WHERE key_hash=?", (hash_key(api_key),)).fetchone()
        return row[0] if row else None

    def tenant_exists(self, name: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM tenants WHERE name=?", (name,)).fetchone() is not None

    # -- registry
    def put_devices(self, devices: list[DeviceRecord]) -> None:
        rows = [
            (d.id, d.tenant, d.type, d.phases, d.gateway, d.asset, d.status, orjson.dumps(d.meta).decode())
            for d in devices
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # the ownership check and the insert are one step for all replicas
            try:
                taken = self._taken_by_other_tenant(devices)
                if taken:
                    raise ValueError(f"device id(s) already used by another tenant: {', '.join(taken[:5])}")
                self._db.executemany(
                    "INSERT INTO devices VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET type=excluded.type,"
                    " phases=excluded.phases, gateway=excluded.gateway, asset=excluded.asset, meta=excluded.meta"
                    " WHERE devices.tenant=excluded.tenant",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")  # a failed batch must not leave the shared connection in a transaction
                raise
            now = time.monotonic()
            for d in devices:
                self._owners[d.id] = (d.tenant, now)

    def _taken_by_other_tenant(self, devices: list[DeviceRecord]) -> list[str]:
        """Ids owned by another tenant, read from the store (not the cache: another replica may have changed it)."""
        taken = []
        for d in devices:
            row = self._db.execute("SELECT tenant FROM devices WHERE id=?", (d.id,)).fetchone()
            if row is not None and row[0] != d.tenant:
                taken.append(d.id)
        return taken

    @staticmethod
    def _device(row: tuple) -> DeviceRecord:
        return DeviceRecord(
            id=row[0], tenant=row[1], type=row[2], phases=row[3], gateway=row[4], asset=row[5],
            status=row[6], meta=orjson.loads(row[7]),
        )

    def get_device(self, tenant: str, device: str) -> DeviceRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM devices WHERE id=? AND tenant=?", (device, tenant)).fetchone()
        return self._device(row) if row else None

    def list_devices(self, tenant: str) -> list[DeviceRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM devices WHERE tenant=? ORDER BY id", (tenant,)).fetchall()
        return [self._device(r) for r in rows]

    def delete_device(self, tenant: str, device: str) -> bool:
        with self._lock:
            n = self._db.execute("DELETE FROM devices WHERE id=? AND tenant=?", (device, tenant)).rowcount
            self._owners.pop(device, None)
        return n > 0

    def owner_of(self, device: str) -> str | None:
        """The device's tenant; cached at most OWNER_CACHE_S (a change through another replica shows by then)."""
        cached = self._owners.get(device)
        now = time.monotonic()
        if cached is not None and now - cached[1] < OWNER_CACHE_S:
            return cached[0]
        with self._lock:
            row = self._db.execute("SELECT tenant FROM devices WHERE id=?", (device,)).fetchone()
        if row is None:
            self._owners.pop(device, None)
            return None
        self._owners[device] = (row[0], now)
        return row[0]

    def set_device_status(self, tenant: str, device: str, status: str) -> None:
        with self._lock:
            self._db.execute("UPDATE devices SET status=? WHERE id=? AND tenant=?", (status, device, tenant))

    def put_asset(self, asset: AssetRecord) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO assets VALUES (?,?,?,?,?)",
                (asset.tenant, asset.id, asset.kind, asset.name, asset.parent),
            )

    def get_asset(self, tenant: str, asset: str) -> AssetRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM assets WHERE tenant=? AND id=?", (tenant, asset)).fetchone()
        return AssetRecord(*row) if row else None

    def list_assets(self, tenant: str) -> list[AssetRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM assets WHERE tenant=? ORDER BY id", (tenant,)).fetchall()
        return [AssetRecord(*r) for r in rows]

    # -- data
    def insert_readings(self, tenant: str, readings: list[Reading]) -> int:
        """Store the readings not stored yet and fold exactly those into the rollups, in one transaction.

        Fast path: insert everything with OR IGNORE; if every row was new (the normal case) the batch's
        rollups are added as computed. Otherwise roll back and redo with the duplicates removed first.
        """
        if not readings:
            return 0
        dumps = orjson.dumps
        db = self._db
        with self._lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                before = db.total_changes
                # sorted by key: consecutive inserts land on the same B-tree pages (fewer dirty pages to commit)
                devs, tss, seqs, qs = zip(*readings, strict=True)  # columns, built in C
                rows = sorted(zip(repeat(tenant, len(devs)), devs, tss, seqs, map(dumps, qs), strict=True),
                              key=BY_DEV_TS)
                db.executemany(INSERT_READING_SQL, rows)
                if db.total_changes - before != len(readings):
                    db.execute("ROLLBACK")
                    db.execute("BEGIN IMMEDIATE")  # _new_only reads before it writes: hold the write lock first
                    readings = self._new_only(tenant, readings)
                    db.executemany(INSERT_READING_SQL, [(tenant, r.dev, r.ts, r.seq, dumps(r.q)) for r in readings])
                if readings:
                    db.executemany(UPSERT_ROLLUP_SQL, sorted(rollup_rows(tenant, readings), key=BY_ROLLUP_KEY))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return len(readings)

    def _new_only(self, tenant: str, readings: list[Reading]) -> list[Reading]:
        """The first reading of each (dev, ts) of the batch that is not stored yet (inside the transaction)."""
        unique: dict[tuple[str, int], Reading] = {}
        for r in readings:
            unique.setdefault((r.dev, r.ts), r)
        db = self._db
        db.execute("DELETE FROM batch_k")
        db.executemany("INSERT INTO batch_k VALUES (?,?)", list(unique))
        stored = db.execute(
            "SELECT k.dev, k.ts FROM batch_k k JOIN readings r ON r.tenant=? AND r.dev=k.dev AND r.ts=k.ts", (tenant,)
        ).fetchall()
        for key in stored:
            del unique[key]
        return list(unique.values())

    def insert_events(self, tenant: str, events: list[Event]) -> int:
        rows = [(tenant, e.dev, e.ts, e.type, e.severity, orjson.dumps(e.data)) for e in events]
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._db.total_changes - before

    def add_rejected(self, tenant: str | None, topic: str, reason: str, payload: bytes) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO rejected (tenant, topic, reason, payload) VALUES (?,?,?,?)",
                (tenant, topic, reason, payload[:65536]),
            )

    def query_readings(
        self, tenant: str, device: str, start: int | None, end: int | None, limit: int
    ) -> list[StoredReading]:
        with self._lock:
            rows = self._db.execute(
                "SELECT ts, seq, q FROM readings WHERE tenant=? AND dev=? AND ts>=? AND ts<? ORDER BY ts LIMIT ?",
                (tenant, device, start if start is not None else -1, end if end is not None else 2**62, limit),
            ).fetchall()
        return [StoredReading(ts, seq, orjson.loads(q)) for ts, seq, q in rows]

    def query_events(
        self, tenant: str, device: str, start: int | None, end: int | None, kind: str | None
    ) -> list[Event]:
        sql = "SELECT dev, ts, type, severity, data FROM events WHERE tenant=? AND dev=? AND ts>=? AND ts<?"
        args: list = [tenant, device, start if start is not None else -1, end if end is not None else 2**62]
        if kind:
            sql += " AND type=?"
            args.append(kind)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY ts", args).fetchall()
        return [Event(d, ts, t, s, orjson.loads(data)) for d, ts, t, s, data in rows]

    def count_readings(self, tenant: str) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM readings WHERE tenant=?", (tenant,)).fetchone()[0]

    def count_rejected(self, tenant: str | None) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM rejected WHERE tenant IS ?", (tenant,)).fetchone()[0]

    def readings_per_device(self, tenant: str, start: int | None, end: int | None) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT dev, count(*) FROM readings WHERE tenant=? AND ts>=? AND ts<? GROUP BY dev",
                (tenant, start if start is not None else -1, end if end is not None else 2**62),
            ).fetchall()
        return dict(rows)

    def query_rollups(
        self, tenant: str, devices: list[str], quantity: str, resolution: str, start: int, end: int
    ) -> list[RollupBucket]:
        width = RESOLUTIONS[resolution]
        marks = ",".join("?" * len(devices))
        with self._lock:
            rows = self._db.execute(
                f"SELECT dev, b, n, sum, min, max, fts, fv, lts, lv FROM rollups WHERE tenant=? AND dev IN ({marks})"
                " AND q=? AND res=? AND b>=? AND b<? ORDER BY dev, b",
                (tenant, *devices, quantity, width, start, end),
            ).fetchall()
        return [RollupBucket(*r) for r in rows]

    # -- retention
    def apply_retention(
        self, tenant: str, raw_days: float | None = None, rollup_days: dict[str, float] | None = None,
        batch: int = 5000, now: int | None = None,
    ) -> dict[str, int]:
        """Delete the tenant's raw readings older than ``raw_days`` and rollup buckets that ended more than
        ``rollup_days[res]`` ago, ``batch`` rows per transaction (ingest goes on between batches)."""
        now = now if now is not None else time.time_ns() // 1_000_000
        deleted: dict[str, int] = {}
        if raw_days is not None:
            cutoff = now - int(raw_days * DAY_MS)
            deleted["raw"] = sum(
                self._delete_in_batches(
                    "DELETE FROM readings WHERE (tenant, dev, ts) IN (SELECT tenant, dev, ts FROM readings"
                    " WHERE tenant=? AND dev=? AND ts<? ORDER BY ts LIMIT ?)", (tenant, dev, cutoff), batch)
                for (dev,) in self._series(tenant, "readings", ("dev",)))
        for res, days in (rollup_days or {}).items():
            width = RESOLUTIONS[res]
            cutoff = now - int(days * DAY_MS) - width  # the bucket's whole width is older than the bound
            deleted[res] = sum(
                self._delete_in_batches(
                    "DELETE FROM rollups WHERE (tenant, dev, q, res, b) IN (SELECT tenant, dev, q, res, b FROM rollups"
                    " WHERE tenant=? AND dev=? AND q=? AND res=? AND b<=? ORDER BY b LIMIT ?)",
                    (tenant, dev, q, width, cutoff), batch)
                for dev, q in self._series(tenant, "rollups", ("dev", "q")))
        return deleted

    def _series(self, tenant: str, table: str, cols: tuple[str, ...]) -> list[tuple]:
        """Distinct leading key values of the tenant's rows, found by index seeks (no full scan)."""
        out: list[tuple] = []
        names, marks = ", ".join(cols), ", ".join("?" * len(cols))
        after: tuple = ("",) * len(cols)
        while True:
            with self._lock:
                row = self._db.execute(
                    f"SELECT {names} FROM {table} WHERE tenant=? AND ({names}) > ({marks}) ORDER BY {names} LIMIT 1",
                    (tenant, *after)).fetchone()
            if row is None:
                return out
            out.append(row)
            after = tuple(row)

    def _delete_in_batches(self, sql: str, args: tuple, batch: int) -> int:
        total = 0
        while True:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    n = self._db.execute(sql, (*args, batch)).rowcount
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            total += n
            if n < batch:
                return total

    # -- commands
    def put_command(self, command: CommandRecord) -> None:
        c = command
        with self._lock:
            self._db.execute(
                "INSERT INTO commands VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (c.tenant, c.id, c.device, c.name, orjson.dumps(c.args), c.ts, c.expires, c.status, c.detail,
                 c.updated, orjson.dumps(c.history)),
            )

    @staticmethod
    def _command(row: tuple) -> CommandRecord:
        return CommandRecord(
            tenant=row[0], id=row[1], device=row[2], name=row[3], args=orjson.loads(row[4]), ts=row[5],
            expires=row[6], status=row[7], detail=row[8], updated=row[9], history=orjson.loads(row[10]),
        )

    def get_command(self, tenant: str, command_id: str) -> CommandRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM commands WHERE tenant=? AND id=?", (tenant, command_id)
            ).fetchone()
        return self._command(row) if row else None

    def update_command(
        self, tenant: str, command_id: str, status: str, detail: str, ts: int, *, expect_updated: int | None = None
    ) -> bool:
        if status not in COMMAND_STEPS:
            raise ValueError(f"unknown command status {status!r}")
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")  # read, check and write as one step, whichever replica writes
            try:
                row = db.execute("SELECT status, updated, history FROM commands WHERE tenant=? AND id=?",
                                 (tenant, command_id)).fetchone()
                moved = row is not None and command_step_allowed(row[0], status, same=expect_updated is not None)
                if moved and expect_updated is not None:
                    moved = row[1] == expect_updated
                    ts = max(ts, expect_updated + 1)
                if moved:
                    history = [*orjson.loads(row[2]), [status, ts]]
                    db.execute("UPDATE commands SET status=?, detail=?, updated=?, history=? WHERE tenant=? AND id=?",
                               (status, detail, ts, orjson.dumps(history), tenant, command_id))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return moved

    def open_commands(self) -> list[CommandRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM commands WHERE status IN (?,?,?) ORDER BY ts", OPEN_STATUSES
            ).fetchall()
        return [self._command(r) for r in rows]

    # -- leases
    def acquire_lease(self, name: str, holder: str, ttl_ms: int, now: int | None = None) -> bool:
        now = now if now is not None else time.time_ns() // 1_000_000
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO leases VALUES (?,?,?) ON CONFLICT(name) DO UPDATE SET holder=excluded.holder,"
                " until=excluded.until WHERE leases.holder=excluded.holder OR leases.until<?",
                (name, holder, now + ttl_ms, now))
            return cur.rowcount > 0

    def release_lease(self, name: str, holder: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM leases WHERE name=? AND holder=?", (name, holder))

    def close(self) -> None:
        with self._lock:
            self._db.close()
