"""The SQLite store's connection and schema: one file, WAL journal, every write committed before it is acknowledged.

Several processes (platform replicas on one host or a shared volume) may open the same file: every write
transaction starts with BEGIN IMMEDIATE (it waits for the write lock instead of failing on a stale read
snapshot), and read-check-write steps (command status, device ownership, leases) run inside one.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from gridloop.platform.store.layout import LAYOUT, LAYOUT_KEY, StoreLayoutError
from gridloop.platform.store.registry_cache import RegistryCache
from gridloop.platform.store.sqlite.values import ShapeCodec

DEVICES_TABLE = """CREATE TABLE IF NOT EXISTS devices (
    id TEXT NOT NULL, tenant TEXT NOT NULL, type TEXT NOT NULL, phases INTEGER NOT NULL,
    gateway TEXT, asset TEXT, status TEXT NOT NULL DEFAULT 'unknown', meta TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant, id)) WITHOUT ROWID"""
# values packed by their quantity set (values.py: ``shape`` names it and its column packing, ``v`` holds them)
READINGS_TABLE = """CREATE TABLE IF NOT EXISTS readings (
    tenant TEXT NOT NULL, dev TEXT NOT NULL, ts INTEGER NOT NULL, seq INTEGER, shape INTEGER NOT NULL,
    v BLOB NOT NULL, PRIMARY KEY (tenant, dev, ts)) WITHOUT ROWID"""
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS store_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE);
{DEVICES_TABLE};
CREATE TABLE IF NOT EXISTS assets (
    tenant TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, parent TEXT,
    PRIMARY KEY (tenant, id));
{READINGS_TABLE};
CREATE TABLE IF NOT EXISTS shapes (id INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS rollup_marks (tenant TEXT PRIMARY KEY, upto INTEGER NOT NULL);
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


class SqliteBase:
    """The connection every part of the SQLite store uses, guarded by one lock (API, ingest, dispatch threads)."""

    _db: sqlite3.Connection
    _lock: threading.RLock
    _registered: RegistryCache
    _codec: ShapeCodec

    def __init__(self, path: str, migrate: bool = False) -> None:
        """``migrate``: bring a store of an older layout to this one (gridloop platform migrate) instead of
        refusing it."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA page_size=16384")  # a new file only: fewer, fuller B-tree pages per batch
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("PRAGMA temp_store=MEMORY")  # the per-batch staging tables never touch the disk
        self._db.execute("PRAGMA cache_size=-65536")  # 64 MiB: rollup upserts touch many pages
        self._path = path
        self._codec = ShapeCodec()
        found = self._layout()
        if found != LAYOUT and not (migrate and found < LAYOUT):
            self._db.close()
            raise StoreLayoutError(f"sqlite:///{path}", found)
        if found == 1:
            from gridloop.platform.store.sqlite.migrate import migrate_layout1

            migrate_layout1(self._db, self._codec)
        elif found < LAYOUT:  # layout 2: its float64 rows read as they are, only the number changes
            self._db.execute("UPDATE store_info SET value=? WHERE key=?", (str(LAYOUT), LAYOUT_KEY))
        self._db.executescript(SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO store_info VALUES (?, ?)", (LAYOUT_KEY, str(LAYOUT)))
        from gridloop.platform.store.sqlite.counters import build_counters

        build_counters(self._db)
        self._registered = RegistryCache()

    def _layout(self) -> int:
        """This file's layout: LAYOUT for a new file, 1 for one written before layouts were recorded."""
        tables = {name for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "store_info" in tables:
            row = self._db.execute("SELECT value FROM store_info WHERE key=?", (LAYOUT_KEY,)).fetchone()
            if row is not None:
                return int(row[0])
        return 1 if "devices" in tables else LAYOUT

    def close(self) -> None:
        with self._lock:
            self._db.close()
