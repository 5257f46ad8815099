"""Counters kept as readings are stored, so that /metrics and completeness never count raw readings.

``reading_counts`` holds how many readings each device has stored per UTC hour, ``tenant_counts`` how many the
tenant has, and ``rejected_counts`` its rejected messages. They change in the transaction that changes the rows they
count (insert_readings counts only the rows it actually inserted, so a redelivered batch adds nothing; retention
subtracts what it deletes), so they always equal a count of the rows. A store written before the counters existed
gets them built from its rows once, when it is first opened (``build_counters``).

A span's per-device count reads the hour counters of its whole hours and counts raw readings only in the partial
hours at its two ends (none for a span on whole hours): its cost depends on the devices and the span, not on how
much the store holds.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable

from gridloop.platform.store.sqlite.connection import SqliteBase

HOUR_MS = 3_600_000
COUNTERS_KEY = "counters"  # store_info: set once the counters match the rows
COUNTERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS reading_counts (
    tenant TEXT NOT NULL, h INTEGER NOT NULL, dev TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (tenant, h, dev)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tenant_counts (tenant TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rejected_counts (tenant TEXT PRIMARY KEY, n INTEGER NOT NULL);
"""
ADD_HOUR_SQL = ("INSERT INTO reading_counts VALUES (?,?,?,?)"
                " ON CONFLICT (tenant, h, dev) DO UPDATE SET n = n + excluded.n")
ADD_TENANT_SQL = "INSERT INTO tenant_counts VALUES (?,?) ON CONFLICT (tenant) DO UPDATE SET n = n + excluded.n"
ADD_REJECTED_SQL = "INSERT INTO rejected_counts VALUES (?,?) ON CONFLICT (tenant) DO UPDATE SET n = n + excluded.n"
NO_TENANT = ""  # rejected_counts key of messages no tenant could be told from (tenant names are never empty)
# per device, its readings in [lo, hi) of one hour, counted by an index seek of the devices that have that hour
EDGE_SQL = """
SELECT c.dev, (SELECT count(*) FROM readings r WHERE r.tenant=c.tenant AND r.dev=c.dev AND r.ts>=? AND r.ts<?)
FROM reading_counts c WHERE c.tenant=? AND c.h=?
"""
NEVER = 2**62


def build_counters(db: sqlite3.Connection) -> None:
    """Count the stored rows into the counters once (a store written before they existed); no-op afterwards."""
    db.executescript(COUNTERS_SCHEMA)
    if db.execute("SELECT 1 FROM store_info WHERE key=?", (COUNTERS_KEY,)).fetchone() is not None:
        return  # built already: no write lock taken at every open
    db.execute("BEGIN IMMEDIATE")  # another process may be building them too: the check is inside the lock
    try:
        if db.execute("SELECT 1 FROM store_info WHERE key=?", (COUNTERS_KEY,)).fetchone() is None:
            for table in ("reading_counts", "tenant_counts", "rejected_counts"):
                db.execute(f"DELETE FROM {table}")
            db.execute(f"INSERT INTO reading_counts SELECT tenant, ts / {HOUR_MS}, dev, count(*) FROM readings"
                       " GROUP BY 1, 2, 3")
            db.execute("INSERT INTO tenant_counts SELECT tenant, sum(n) FROM reading_counts GROUP BY tenant")
            db.execute("INSERT INTO rejected_counts SELECT coalesce(tenant, ?), count(*) FROM rejected GROUP BY 1",
                       (NO_TENANT,))
            db.execute("INSERT INTO store_info VALUES (?, '1')", (COUNTERS_KEY,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class SqliteCounters(SqliteBase):
    """Reading and rejection counters: written inside the caller's transaction, read by /metrics and completeness."""

    def _count_stored(self, tenant: str, keys: Iterable[tuple[str, int]], sign: int = 1) -> None:
        """Add (sign=-1: subtract) the (dev, ts) readings just inserted (deleted) to the counters; in the caller's
        write transaction."""
        per_hour = Counter((ts // HOUR_MS, dev) for dev, ts in keys)
        if not per_hour:
            return
        db = self._db
        db.executemany(ADD_HOUR_SQL, [(tenant, h, dev, sign * n) for (h, dev), n in sorted(per_hour.items())])
        db.execute(ADD_TENANT_SQL, (tenant, sign * per_hour.total()))
        if sign < 0:
            hours = sorted({h for h, _ in per_hour})
            db.execute(f"DELETE FROM reading_counts WHERE tenant=? AND n<=0 AND h IN ({','.join('?' * len(hours))})",
                       (tenant, *hours))

    def _count_rejected(self, tenants: Iterable[str | None]) -> None:
        per_tenant = Counter(NO_TENANT if t is None else t for t in tenants)
        self._db.executemany(ADD_REJECTED_SQL, sorted(per_tenant.items()))

    def count_readings(self, tenant: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT n FROM tenant_counts WHERE tenant=?", (tenant,)).fetchone()
        return 0 if row is None else row[0]

    def count_rejected(self, tenant: str | None) -> int:
        with self._lock:
            row = self._db.execute("SELECT n FROM rejected_counts WHERE tenant=?",
                                   (NO_TENANT if tenant is None else tenant,)).fetchone()
        return 0 if row is None else row[0]

    def readings_per_device(self, tenant: str, start: int | None, end: int | None) -> dict[str, int]:
        """Readings per device in [start, end): the hour counters of its whole hours, raw readings at its ends."""
        lo = max(start if start is not None else 0, 0)
        hi = end if end is not None else NEVER
        out: Counter[str] = Counter()
        if hi <= lo:
            return {}
        first_whole, end_whole = -(-lo // HOUR_MS), hi // HOUR_MS
        db = self._db
        with self._lock:
            if first_whole < end_whole:
                out.update(dict(db.execute(
                    "SELECT dev, sum(n) FROM reading_counts WHERE tenant=? AND h>=? AND h<? GROUP BY dev",
                    (tenant, first_whole, end_whole))))
                edges = [(lo, first_whole * HOUR_MS), (end_whole * HOUR_MS, hi)]
            else:  # within one hour, or across one hour boundary
                edges = [(lo, min(hi, (lo // HOUR_MS + 1) * HOUR_MS)), ((lo // HOUR_MS + 1) * HOUR_MS, hi)]
            for a, b in edges:
                if a < b:
                    out.update({dev: n for dev, n in db.execute(EDGE_SQL, (a, b, tenant, a // HOUR_MS)) if n})
        return dict(out)
