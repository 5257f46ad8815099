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

DEVICES_TABLE = """CREATE TABLE IF NOT EXISTS devices (
    id TEXT NOT NULL, tenant TEXT NOT NULL, type TEXT NOT NULL, phases INTEGER NOT NULL,
    gateway TEXT, asset TEXT, status TEXT NOT NULL DEFAULT 'unknown', meta TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant, id)) WITHOUT ROWID"""
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS store_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE);
{DEVICES_TABLE};
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


class SqliteBase:
    """The connection every part of the SQLite store uses, guarded by one lock (API, ingest, dispatch threads)."""

    _db: sqlite3.Connection
    _lock: threading.RLock
    _registered: RegistryCache

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
        found = self._layout()
        if found != LAYOUT and not (migrate and found < LAYOUT):
            self._db.close()
            raise StoreLayoutError(f"sqlite:///{path}", found)
        if found < LAYOUT:
            self._migrate_from(found)
        self._db.executescript(SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO store_info VALUES (?, ?)", (LAYOUT_KEY, str(LAYOUT)))
        self._registered = RegistryCache()

    def _layout(self) -> int:
        """This file's layout: LAYOUT for a new file, 1 for one written before layouts were recorded."""
        tables = {name for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "store_info" in tables:
            row = self._db.execute("SELECT value FROM store_info WHERE key=?", (LAYOUT_KEY,)).fetchone()
            if row is not None:
                return int(row[0])
        return 1 if "devices" in tables else LAYOUT

    def _migrate_from(self, found: int) -> None:
        """Layout 1 -> 2: devices keyed by (tenant, id) instead of a global id, in one transaction."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("ALTER TABLE devices RENAME TO devices_layout1")
            db.execute("DROP INDEX IF EXISTS devices_tenant")
            db.execute(DEVICES_TABLE)
            db.execute("INSERT INTO devices SELECT id, tenant, type, phases, gateway, asset, status, meta"
                       " FROM devices_layout1")
            db.execute("DROP TABLE devices_layout1")
            db.execute("CREATE TABLE IF NOT EXISTS store_info (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("INSERT OR REPLACE INTO store_info VALUES (?, ?)", (LAYOUT_KEY, str(LAYOUT)))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()
