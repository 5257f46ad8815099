"""Rollup buckets in SQLite: queries, a bulk restore and retention (old readings and buckets deleted in batches)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from itertools import islice
from operator import itemgetter

from gridloop.platform.rollups import RESOLUTIONS, RollupBucket, RollupRow
from gridloop.platform.store.sqlite.connection import SqliteBase

BY_ROLLUP_KEY = itemgetter(1, 2, 3, 4)
# the batch's contribution to one bucket (computed in numpy, rollups.rollup_rows) folded into the stored bucket
UPSERT_ROLLUP_SQL = """
INSERT INTO rollups (tenant, dev, q, res, b, n, sum, min, max, fts, fv, lts, lv) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (tenant, dev, q, res, b) DO UPDATE SET
    n = n + excluded.n, sum = sum + excluded.sum, min = min(min, excluded.min), max = max(max, excluded.max),
    fv = CASE WHEN excluded.fts < fts THEN excluded.fv ELSE fv END, fts = min(fts, excluded.fts),
    lv = CASE WHEN excluded.lts > lts THEN excluded.lv ELSE lv END, lts = max(lts, excluded.lts)
"""
DAY_MS = 86_400_000

RESTORE_BATCH = 500_000  # restored rows per transaction


class SqliteRollups(SqliteBase):
    """Rollup buckets: queries, restore and retention."""

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

    def restore_rollups(self, rows: Iterable[RollupRow]) -> int:
        """Fold restored buckets into the stored ones with ingest's upsert, RESTORE_BATCH rows per transaction."""
        total = 0
        it = iter(rows)
        while batch := list(islice(it, RESTORE_BATCH)):
            total += self._upsert_rollups(batch)
        return total

    def _upsert_rollups(self, rows: list[RollupRow]) -> int:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(UPSERT_ROLLUP_SQL, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def count_rollups(self, tenant: str) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM rollups WHERE tenant=?", (tenant,)).fetchone()[0]

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
