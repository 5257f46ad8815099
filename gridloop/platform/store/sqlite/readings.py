"""Readings (packed values; late ones folded into the rollups in the same transaction), events and rejected
messages in SQLite."""

from __future__ import annotations

from operator import itemgetter

import orjson

from gridloop.platform.envelope import Event, Reading
from gridloop.platform.rollups import ALL_WIDTHS, rollup_rows
from gridloop.platform.store.records import StoredReading
from gridloop.platform.store.sqlite.counters import SqliteCounters
from gridloop.platform.store.sqlite.rollups import BY_ROLLUP_KEY, UPSERT_ROLLUP_SQL, kept_widths_of

BY_DEV_TS = itemgetter(1, 2)  # never compares seq or values: equal keys in one batch must not raise
INSERT_READING_SQL = "INSERT OR IGNORE INTO readings VALUES (?,?,?,?,?,?)"
MINUTE_MS = 60_000
_TS = itemgetter(1)


class SqliteReadings(SqliteCounters):
    """Readings (values packed by quantity set), their late rollups, events and rejected messages."""

    def insert_readings(self, tenant: str, readings: list[Reading]) -> int:
        """Store the readings not stored yet, in one transaction; fold at once those older than the tenant's rollup
        mark (the rest is folded by materialize_rollups, and read from the raw readings until then).

        Fast path: insert everything with OR IGNORE; if every row was new (the normal case) that is all.
        Otherwise roll back and redo with the duplicates removed first.
        """
        if not readings:
            return 0
        db = self._db
        with self._lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                # sorted by key: consecutive inserts land on the same B-tree pages (fewer dirty pages to commit)
                rows = sorted(self._codec.rows(db, tenant, readings), key=BY_DEV_TS)
                before = db.total_changes
                db.executemany(INSERT_READING_SQL, rows)
                if db.total_changes - before != len(readings):
                    db.execute("ROLLBACK")
                    self._codec.forget()  # shapes it added were rolled back too
                    db.execute("BEGIN IMMEDIATE")  # _new_only reads before it writes: hold the write lock first
                    readings = self._new_only(tenant, readings)
                    if readings:
                        db.executemany(INSERT_READING_SQL, self._codec.rows(db, tenant, readings))
                if readings:
                    self._fold_late(tenant, readings)
                    self._count_stored(tenant, (r[:2] for r in readings))  # only the rows inserted: redelivery adds 0
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                self._codec.forget()
                raise
        return len(readings)

    def _fold_late(self, tenant: str, readings: list[Reading]) -> None:
        """Readings older than the rollup mark go into the buckets now; the first batch of a tenant sets the mark, and
        older readings move it back as long as nothing has been folded."""
        db = self._db
        mark = db.execute("SELECT upto FROM rollup_marks WHERE tenant=?", (tenant,)).fetchone()
        if mark is None:
            first = min(map(_TS, readings))
            db.execute("INSERT INTO rollup_marks VALUES (?, ?)", (tenant, first - first % MINUTE_MS))
            return
        late = [r for r in readings if r[1] < mark[0]]
        if not late:
            return
        if db.execute("SELECT 1 FROM rollups WHERE tenant=? LIMIT 1", (tenant,)).fetchone() is None:
            # nothing folded yet: the first batch set the mark, and it came from a device whose clock is ahead of
            # the fleet's (a probe stamping wall time into a simulated day, an RTC reset): move the mark back
            # instead of folding every reading of the fleet on arrival, one upsert per quantity and resolution
            first = min(map(_TS, late))
            db.execute("UPDATE rollup_marks SET upto=? WHERE tenant=?", (first - first % MINUTE_MS, tenant))
            return
        widths = kept_widths_of(db, tenant, sorted({r[0] for r in late}))
        by_widths: dict[tuple[int, ...], list[Reading]] = {}
        for r in late:
            by_widths.setdefault(widths.get(r[0], ALL_WIDTHS), []).append(r)
        for kept, group in by_widths.items():
            db.executemany(UPSERT_ROLLUP_SQL, sorted(rollup_rows(tenant, group, kept), key=BY_ROLLUP_KEY))

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
        self.add_rejected_many([(tenant, topic, reason, payload)])

    def add_rejected_many(self, rows: list[tuple[str | None, str, str, bytes]]) -> None:
        db = self._db
        with self._lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT INTO rejected (tenant, topic, reason, payload) VALUES (?,?,?,?)",
                               [(t, topic, reason, payload[:65536]) for t, topic, reason, payload in rows])
                self._count_rejected(row[0] for row in rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def query_readings(
        self, tenant: str, device: str, start: int | None, end: int | None, limit: int
    ) -> list[StoredReading]:
        with self._lock:
            rows = self._db.execute(
                "SELECT ts, seq, shape, v FROM readings WHERE tenant=? AND dev=? AND ts>=? AND ts<? ORDER BY ts"
                " LIMIT ?", (tenant, device, start if start is not None else -1, end if end is not None else 2**62,
                             limit),
            ).fetchall()
            return self._stored(rows)

    def _stored(self, rows: list[tuple[int, int | None, int, bytes]]) -> list[StoredReading]:
        """(ts, seq, shape, packed values) rows as readings, the values unpacked a shape at a time."""
        by_shape: dict[int, list[int]] = {}
        for i, row in enumerate(rows):
            by_shape.setdefault(row[2], []).append(i)
        values: list[dict[str, float]] = [{}] * len(rows)
        for shape, index in by_shape.items():
            names = self._codec.names(self._db, shape)
            matrix = self._codec.matrix(self._db, shape, [rows[i][3] for i in index]).tolist()
            for i, vals in zip(index, matrix, strict=True):
                values[i] = dict(zip(names, vals, strict=True))
        return [StoredReading(ts, seq, v) for (ts, seq, _, _), v in zip(rows, values, strict=True)]

    def query_events(
        self, tenant: str, device: str, start: int | None, end: int | None, kind: str | None, limit: int | None = None
    ) -> list[Event]:
        sql = "SELECT dev, ts, type, severity, data FROM events WHERE tenant=? AND dev=? AND ts>=? AND ts<?"
        args: list = [tenant, device, start if start is not None else -1, end if end is not None else 2**62]
        if kind:
            sql += " AND type=?"
            args.append(kind)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY ts, type LIMIT ?", [*args, -1 if limit is None else limit]
                                    ).fetchall()
        return [Event(d, ts, t, s, orjson.loads(data)) for d, ts, t, s, data in rows]
