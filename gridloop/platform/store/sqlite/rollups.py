"""Rollup buckets in SQLite: queries, a bulk restore and retention (old readings and buckets deleted in batches)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from itertools import islice
from operator import itemgetter

import numpy as np

from gridloop.platform.device_interval import interval_ms
from gridloop.platform.rollups import ALL_WIDTHS, RESOLUTIONS, RollupBucket, RollupRow, columns_rows, kept_widths
from gridloop.platform.store.sqlite.counters import SqliteCounters

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
# every device's readings in [mark, upto): its devices found by index seeks (a skip scan), each range by its key
UNFOLDED_SQL = """
WITH RECURSIVE d(dev) AS (
    SELECT min(dev) FROM readings WHERE tenant=?
    UNION ALL SELECT (SELECT min(dev) FROM readings WHERE tenant=? AND dev > d.dev) FROM d WHERE d.dev IS NOT NULL)
SELECT r.dev, r.ts, r.shape, r.v FROM d JOIN readings r ON r.tenant=? AND r.dev=d.dev AND r.ts>=? AND r.ts<?
"""
RECENT_SQL = "SELECT ts, shape, v FROM readings WHERE tenant=? AND dev=? AND ts>=? AND ts<?"

DELETE_RAW_SQL = ("DELETE FROM readings WHERE (tenant, dev, ts) IN (SELECT tenant, dev, ts FROM readings"
                  " WHERE tenant=? AND dev=? AND ts<? ORDER BY ts LIMIT ?) RETURNING ts")
# a device with resolutions not stored (too few of its readings a bucket): whole buckets of them per transaction
NTH_RAW_SQL = "SELECT ts FROM readings WHERE tenant=? AND dev=? AND ts<? ORDER BY ts LIMIT 1 OFFSET ?"
DELETE_RANGE_SQL = "DELETE FROM readings WHERE tenant=? AND dev=? AND ts<? RETURNING ts, shape, v"
RESTORE_BATCH = 500_000  # restored rows per transaction


def kept_widths_of(db: sqlite3.Connection, tenant: str, devices: list[str] | None) -> dict[str, tuple[int, ...]]:
    """The resolutions stored for each registered device of ``devices`` (None: all the tenant's) that has an
    interval; a device not listed keeps every resolution. Under the caller's lock."""
    sql, args = "SELECT id, type, meta FROM devices WHERE tenant=?", [tenant]
    if devices is not None:
        sql += f" AND id IN ({','.join('?' * len(devices))})"
        args.extend(devices)
    return {dev: kept for dev, kind, meta in db.execute(sql, args)
            if (kept := kept_widths(interval_ms(kind, meta))) != ALL_WIDTHS}


class SqliteRollups(SqliteCounters):
    """Rollup buckets: queries, restore and retention."""

    def query_rollups(
        self, tenant: str, devices: list[str], quantity: str, resolution: str, start: int, end: int
    ) -> list[RollupBucket]:
        """Stored buckets, merged with what the readings past the tenant's rollup mark add (not folded yet)."""
        width = RESOLUTIONS[resolution]
        marks = ",".join("?" * len(devices))
        with self._lock:
            widths = kept_widths_of(self._db, tenant, devices)
            raw_only = sorted(d for d in devices if width not in widths.get(d, ALL_WIDTHS))
            folded = [d for d in devices if width in widths.get(d, ALL_WIDTHS)]
            rows = self._db.execute(
                f"SELECT dev, b, n, sum, min, max, fts, fv, lts, lv FROM rollups WHERE tenant=? AND dev IN ({marks})"
                " AND q=? AND res=? AND b>=? AND b<? ORDER BY dev, b",
                (tenant, *devices, quantity, width, start, end),
            ).fetchall()
            mark = self._rollup_mark(tenant)
            recent = [] if mark is None or end <= mark or not folded else self._recent_buckets(
                tenant, folded, quantity, width, max(mark, -(-start // width) * width), -(-end // width) * width)
            # a resolution with too few of the device's readings a bucket is not stored: read from the raw readings
            # (a stored one, of a restore or an older store, counts where no raw reading is left)
            raw = self._recent_buckets(tenant, raw_only, quantity, width, -(-start // width) * width,
                                       -(-end // width) * width) if raw_only else []
        buckets = {(r[0], r[1]): RollupBucket(*r) for r in rows}
        buckets.update(((b.dev, b.start), b) for b in raw if start <= b.start < end)
        for b in recent:
            if not start <= b.start < end:
                continue
            if (have := buckets.get((b.dev, b.start))) is None:
                buckets[(b.dev, b.start)] = b
            else:
                have.merge(b)
        return [buckets[k] for k in sorted(buckets)]

    def _rollup_mark(self, tenant: str) -> int | None:
        row = self._db.execute("SELECT upto FROM rollup_marks WHERE tenant=?", (tenant,)).fetchone()
        return None if row is None else row[0]

    def _recent_buckets(
        self, tenant: str, devices: list[str], quantity: str, width: int, lo: int, hi: int
    ) -> list[RollupBucket]:
        """Buckets of ``width`` from the raw readings in [lo, hi) that carry ``quantity``."""
        by_shape: dict[int, tuple[list[str], list[int], list[bytes]]] = {}
        for dev in devices:
            for ts, shape, packed in self._db.execute(RECENT_SQL, (tenant, dev, lo, hi)):
                devs, stamps, blobs = by_shape.setdefault(shape, ([], [], []))
                devs.append(dev)
                stamps.append(ts)
                blobs.append(packed)
        names: list[str] = []
        stamp_parts, value_parts = [np.empty(0, np.int64)], [np.empty(0, np.float64)]
        for shape, (devs, stamps, blobs) in by_shape.items():
            shape_names = self._codec.names(self._db, shape)
            if quantity in shape_names:
                names.extend(devs)
                stamp_parts.append(np.array(stamps, np.int64))
                value_parts.append(self._codec.matrix(self._db, shape, blobs)[:, shape_names.index(quantity)])
        stamps_all, values_all = np.concatenate(stamp_parts), np.concatenate(value_parts)
        rows = columns_rows(tenant, (quantity,), names, stamps_all, values_all.reshape(-1, 1), widths=(width,))
        return [RollupBucket(r[1], *r[4:]) for r in rows]

    def materialize_rollups(self, tenant: str, upto: int) -> int:
        """Fold the readings from the tenant's mark up to ``upto`` into the buckets and move the mark there, in one
        transaction (a crash leaves the mark where it was: nothing folded twice, nothing lost). Readings folded."""
        db = self._db
        with self._lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                mark = self._rollup_mark(tenant)
                if mark is None or upto <= mark:
                    db.execute("COMMIT")
                    return 0
                widths = kept_widths_of(self._db, tenant, None)
                groups: dict[tuple[int, tuple[int, ...]], tuple[list[str], list[int], list[bytes]]] = {}
                for dev, ts, shape, packed in db.execute(UNFOLDED_SQL, (tenant, tenant, tenant, mark, upto)):
                    devs, stamps, blobs = groups.setdefault((shape, widths.get(dev, ALL_WIDTHS)), ([], [], []))
                    devs.append(dev)
                    stamps.append(ts)
                    blobs.append(packed)
                folded = 0
                for (shape, kept), (devs, stamps, blobs) in groups.items():
                    names = self._codec.names(db, shape)
                    matrix = self._codec.matrix(db, shape, blobs)
                    rows = columns_rows(tenant, names, devs, np.array(stamps, np.int64), matrix, kept)
                    db.executemany(UPSERT_ROLLUP_SQL, sorted(rows, key=BY_ROLLUP_KEY))
                    folded += len(devs)
                db.execute("UPDATE rollup_marks SET upto=? WHERE tenant=?", (upto, tenant))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return folded

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
        days = [d for d in (raw_days, *(rollup_days or {}).values()) if d is not None]
        if days:  # what goes must be folded into the rollups first (a raw reading never leaves unfolded)
            oldest = now - int(min(days) * DAY_MS)
            self.materialize_rollups(tenant, oldest - oldest % 60_000)
        if raw_days is not None:
            with self._lock:
                mark = self._rollup_mark(tenant)
            cutoff = min(now - int(raw_days * DAY_MS), mark if mark is not None else 0)
            with self._lock:
                widths = kept_widths_of(self._db, tenant, None)
            deleted["raw"] = sum(
                self._delete_raw(tenant, dev, cutoff, batch) if dev not in widths else
                self._delete_raw_folding(tenant, dev, cutoff, batch, widths[dev])
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

    def _delete_raw(self, tenant: str, dev: str, cutoff: int, batch: int) -> int:
        """Delete the device's readings older than ``cutoff``, ``batch`` per transaction, and count them out."""
        return self._delete_in_batches(
            DELETE_RAW_SQL, (tenant, dev, cutoff), batch,
            lambda stamps: self._count_stored(tenant, ((dev, ts) for (ts,) in stamps), sign=-1))

    def _delete_raw_folding(self, tenant: str, dev: str, cutoff: int, batch: int, kept: tuple[int, ...]) -> int:
        """Delete the readings of a device with resolutions not stored (kept_widths), older than
        ``cutoff`` aligned down to the coarsest of those, whole buckets of it per transaction (about ``batch``
        readings); in the same transaction their buckets of those resolutions are stored, as they leave."""
        skipped = tuple(w for w in ALL_WIDTHS if w not in kept)
        cutoff -= cutoff % skipped[-1]
        total, db = 0, self._db
        while True:
            with self._lock:
                db.execute("BEGIN IMMEDIATE")
                try:
                    nth = db.execute(NTH_RAW_SQL, (tenant, dev, cutoff, batch - 1)).fetchone()
                    upto = cutoff if nth is None else min(cutoff, nth[0] - nth[0] % skipped[-1] + skipped[-1])
                    rows = db.execute(DELETE_RANGE_SQL, (tenant, dev, upto)).fetchall()
                    self._fold_leaving(tenant, dev, rows, skipped)
                    self._count_stored(tenant, ((dev, ts) for ts, _, _ in rows), sign=-1)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            total += len(rows)
            if upto == cutoff:
                return total

    def _fold_leaving(self, tenant: str, dev: str, rows: list[tuple[int, int, bytes]], widths: tuple[int, ...]
                      ) -> None:
        """Buckets of ``widths`` of one device's readings (ts, shape, packed values) as they are deleted. A device's
        batches can be packed in different shapes: each quantity is folded from all of them at once."""
        by_shape: dict[int, list[tuple[int, int, bytes]]] = {}
        for row in rows:
            by_shape.setdefault(row[1], []).append(row)
        columns: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        for shape, group in by_shape.items():
            names = self._codec.names(self._db, shape)
            matrix = self._codec.matrix(self._db, shape, [r[2] for r in group])
            stamps = np.array([r[0] for r in group], np.int64)
            for j, q in enumerate(names):
                stamp_parts, value_parts = columns.setdefault(q, ([], []))
                stamp_parts.append(stamps)
                value_parts.append(matrix[:, j])
        for q, (stamp_parts, value_parts) in columns.items():
            stamps, values = np.concatenate(stamp_parts), np.concatenate(value_parts)
            for width in widths:
                keep = self._not_in_stored_buckets(tenant, dev, q, width, stamps)
                self._db.executemany(UPSERT_ROLLUP_SQL, columns_rows(
                    tenant, (q,), [dev] * int(keep.sum()), stamps[keep], values[keep].reshape(-1, 1), (width,)))

    def _not_in_stored_buckets(self, tenant: str, dev: str, q: str, width: int, stamps: np.ndarray) -> np.ndarray:
        """Which readings a stored bucket of theirs does not hold yet: those after its last one. A bucket may be
        there already, partly (folded up to the mark before its resolution was skipped, as a layout-2 store's are)
        or wholly (a restore); the readings after it are added to it, those before it are taken to be in it. Not
        so for a reading that arrived late, older than the mark, after its bucket was stored that way: ingest
        folds it into the resolutions kept only, so this bucket misses it (a redelivered one it rightly skips)."""
        buckets = stamps - stamps % width
        last = dict(self._db.execute(
            "SELECT b, lts FROM rollups WHERE tenant=? AND dev=? AND q=? AND res=? AND b>=? AND b<=?",
            (tenant, dev, q, width, int(buckets.min()), int(buckets.max()))).fetchall())
        if not last:
            return np.ones(len(stamps), dtype=bool)
        floor = np.array([last.get(b, -1) for b in buckets.tolist()], np.int64)
        return stamps > floor

    def _delete_in_batches(self, sql: str, args: tuple, batch: int,
                           on_deleted: Callable[[list[tuple]], None] | None = None) -> int:
        """Run ``sql`` (args, then ``batch``) one transaction at a time until it deletes fewer than ``batch`` rows;
        ``on_deleted``: given the rows its RETURNING clause yields, inside the same transaction."""
        total = 0
        while True:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    cursor = self._db.execute(sql, (*args, batch))
                    if on_deleted is None:
                        n = cursor.rowcount
                    else:
                        deleted = cursor.fetchall()
                        on_deleted(deleted)
                        n = len(deleted)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            total += n
            if n < batch:
                return total
