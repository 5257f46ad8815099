"""Counters kept as readings are stored, so that /metrics and completeness never count raw readings.

``reading_counts`` holds how many readings each device has stored per UTC hour, ``reading_day_counts`` per UTC day,
``tenant_counts`` how many the tenant has, and ``rejected_counts`` its rejected messages. They change in the
transaction that changes the rows they count (insert_readings counts only the rows it actually inserted, so a
redelivered batch adds nothing; retention subtracts what it deletes), so they always equal a count of the rows. A
store written before the counters existed gets them built from its rows once, when it is first opened
(``build_counters``; the day counters from the hour counters, once, for a store that has only those).

A span's per-device count reads the day counters of its whole days, the hour counters of its other whole hours, and
counts raw readings only in the partial hours at its two ends (none for a span on whole hours), from whichever side
of the hour is shorter (the hour counter less the rest of the hour): its cost depends on the devices and the span,
not on how much the store holds.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable

from gridloop.platform.store.sqlite.connection import SqliteBase

HOUR_MS = 3_600_000
HOURS_A_DAY = 24
DAY_MS = HOURS_A_DAY * HOUR_MS
COUNTERS_KEY = "counters"  # store_info: set once the counters match the rows
DAY_COUNTERS_KEY = "day_counters"  # store_info: set once reading_day_counts matches the rows
COUNTERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS reading_counts (
    tenant TEXT NOT NULL, h INTEGER NOT NULL, dev TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (tenant, h, dev)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reading_day_counts (
    tenant TEXT NOT NULL, d INTEGER NOT NULL, dev TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (tenant, d, dev)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tenant_counts (tenant TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rejected_counts (tenant TEXT PRIMARY KEY, n INTEGER NOT NULL);
"""
ADD_HOUR_SQL = ("INSERT INTO reading_counts VALUES (?,?,?,?)"
                " ON CONFLICT (tenant, h, dev) DO UPDATE SET n = n + excluded.n")
ADD_DAY_SQL = ("INSERT INTO reading_day_counts VALUES (?,?,?,?)"
               " ON CONFLICT (tenant, d, dev) DO UPDATE SET n = n + excluded.n")
ADD_TENANT_SQL = "INSERT INTO tenant_counts VALUES (?,?) ON CONFLICT (tenant) DO UPDATE SET n = n + excluded.n"
ADD_REJECTED_SQL = "INSERT INTO rejected_counts VALUES (?,?) ON CONFLICT (tenant) DO UPDATE SET n = n + excluded.n"
NO_TENANT = ""  # rejected_counts key of messages no tenant could be told from (tenant names are never empty)
# per device that has readings in one hour: its readings in [a, b) of that hour, by an index seek
EDGE_SQL = """
SELECT c.dev, (SELECT count(*) FROM readings r WHERE r.tenant=c.tenant AND r.dev=c.dev AND r.ts>=? AND r.ts<?)
FROM reading_counts c WHERE c.tenant=? AND c.h=?
"""
# the same from the other side: the hour's counter less its readings in [hour start, a) and [b, hour end)
EDGE_REST_SQL = """
SELECT c.dev, c.n
    - (SELECT count(*) FROM readings r WHERE r.tenant=c.tenant AND r.dev=c.dev AND r.ts>=? AND r.ts<?)
    - (SELECT count(*) FROM readings r WHERE r.tenant=c.tenant AND r.dev=c.dev AND r.ts>=? AND r.ts<?)
FROM reading_counts c WHERE c.tenant=? AND c.h=?
"""
SUM_HOURS_SQL = "SELECT dev, sum(n) FROM reading_counts WHERE tenant=? AND h>=? AND h<? GROUP BY dev"
SUM_DAYS_SQL = "SELECT dev, sum(n) FROM reading_day_counts WHERE tenant=? AND d>=? AND d<? GROUP BY dev"
NEVER = 2**62


def build_counters(db: sqlite3.Connection) -> None:
    """Count the stored rows into the counters once (a store written before they existed; the day counters from
    the hour counters, for a store that has only those); no-op afterwards."""
    db.executescript(COUNTERS_SCHEMA)
    if _built(db, COUNTERS_KEY) and _built(db, DAY_COUNTERS_KEY):
        return  # built already: no write lock taken at every open
    db.execute("BEGIN IMMEDIATE")  # another process may be building them too: the check is inside the lock
    try:
        if not _built(db, COUNTERS_KEY):
            for table in ("reading_counts", "tenant_counts", "rejected_counts"):
                db.execute(f"DELETE FROM {table}")
            db.execute(f"INSERT INTO reading_counts SELECT tenant, ts / {HOUR_MS}, dev, count(*) FROM readings"
                       " GROUP BY 1, 2, 3")
            db.execute("INSERT INTO tenant_counts SELECT tenant, sum(n) FROM reading_counts GROUP BY tenant")
            db.execute("INSERT INTO rejected_counts SELECT coalesce(tenant, ?), count(*) FROM rejected GROUP BY 1",
                       (NO_TENANT,))
            db.execute("INSERT INTO store_info VALUES (?, '1')", (COUNTERS_KEY,))
        if not _built(db, DAY_COUNTERS_KEY):  # the hour counters equal the rows here: days are their sums
            db.execute("DELETE FROM reading_day_counts")
            db.execute(f"INSERT INTO reading_day_counts SELECT tenant, h / {HOURS_A_DAY}, dev, sum(n)"
                       " FROM reading_counts GROUP BY 1, 2, 3")
            db.execute("INSERT INTO store_info VALUES (?, '1')", (DAY_COUNTERS_KEY,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _built(db: sqlite3.Connection, key: str) -> bool:
    return db.execute("SELECT 1 FROM store_info WHERE key=?", (key,)).fetchone() is not None


def _whole_units(lo: int, hi: int, unit_ms: int) -> tuple[int, int]:
    """The first and the end (exclusive) of the whole units of ``unit_ms`` inside [lo, hi)."""
    return -(-lo // unit_ms), hi // unit_ms


class SqliteCounters(SqliteBase):
    """Reading and rejection counters: written inside the caller's transaction, read by /metrics and completeness."""

    def _count_stored(self, tenant: str, keys: Iterable[tuple[str, int]], sign: int = 1) -> None:
        """Add (sign=-1: subtract) the (dev, ts) readings just inserted (deleted) to the counters; in the caller's
        write transaction."""
        per_hour = Counter((ts // HOUR_MS, dev) for dev, ts in keys)
        if not per_hour:
            return
        per_day: Counter[tuple[int, str]] = Counter()
        for (h, dev), n in per_hour.items():
            per_day[h // HOURS_A_DAY, dev] += n
        db = self._db
        db.executemany(ADD_HOUR_SQL, [(tenant, h, dev, sign * n) for (h, dev), n in sorted(per_hour.items())])
        db.executemany(ADD_DAY_SQL, [(tenant, d, dev, sign * n) for (d, dev), n in sorted(per_day.items())])
        db.execute(ADD_TENANT_SQL, (tenant, sign * per_hour.total()))
        if sign < 0:
            for table, col, units in (("reading_counts", "h", per_hour), ("reading_day_counts", "d", per_day)):
                touched = sorted({u for u, _ in units})
                db.execute(f"DELETE FROM {table} WHERE tenant=? AND n<=0 AND {col} IN ({','.join('?' * len(touched))})",
                           (tenant, *touched))

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
        """Readings per device in [start, end): the day counters of its whole days, the hour counters of its other
        whole hours, raw readings in the partial hours at its ends."""
        lo = max(start if start is not None else 0, 0)
        hi = end if end is not None else NEVER
        if hi <= lo:
            return {}
        out: Counter[str] = Counter()
        first_hour, end_hour = _whole_units(lo, hi, HOUR_MS)
        with self._lock:
            if first_hour < end_hour:
                hours = [(first_hour, end_hour)]
                first_day, end_day = _whole_units(first_hour, end_hour, HOURS_A_DAY)
                if first_day < end_day:
                    out.update(self._sums(SUM_DAYS_SQL, tenant, first_day, end_day))
                    hours = [(first_hour, first_day * HOURS_A_DAY), (end_day * HOURS_A_DAY, end_hour)]
                for a, b in hours:
                    out.update(self._sums(SUM_HOURS_SQL, tenant, a, b))
                edges = [(lo, first_hour * HOUR_MS), (end_hour * HOUR_MS, hi)]
            else:  # within one hour, or across one hour boundary
                edges = [(lo, min(hi, (lo // HOUR_MS + 1) * HOUR_MS)), ((lo // HOUR_MS + 1) * HOUR_MS, hi)]
            for a, b in edges:
                if a < b:
                    out.update(self._edge(tenant, a, b))
        return dict(out)

    def _sums(self, sql: str, tenant: str, first: int, end: int) -> dict[str, int]:
        return dict(self._db.execute(sql, (tenant, first, end))) if first < end else {}

    def _edge(self, tenant: str, a: int, b: int) -> dict[str, int]:
        """Readings per device in [a, b), inside one hour: counted where fewer rows are (the span or the rest)."""
        h = a // HOUR_MS
        hour_start, hour_end = h * HOUR_MS, (h + 1) * HOUR_MS
        if 2 * (b - a) <= HOUR_MS:
            rows = self._db.execute(EDGE_SQL, (a, b, tenant, h))
        else:
            rows = self._db.execute(EDGE_REST_SQL, (hour_start, a, b, hour_end, tenant, h))
        return {dev: n for dev, n in rows if n}
