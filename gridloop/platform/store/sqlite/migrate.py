"""Layout 1 -> the current layout of the SQLite store, in one transaction (a migration stopped half-way leaves
layout 1 as it was).

Devices are re-keyed by (tenant, id); readings' JSON objects become packed values of a quantity set; and since
layout 1 folded every reading into the rollups at ingest, each tenant's rollup mark is put past its last reading.
"""

from __future__ import annotations

import sqlite3

import orjson

from gridloop.platform.envelope import Reading
from gridloop.platform.store.layout import LAYOUT, LAYOUT_KEY
from gridloop.platform.store.sqlite.values import ShapeCodec

BATCH = 50_000  # readings converted per step


def migrate_layout1(db: sqlite3.Connection, codec: ShapeCodec) -> None:
    from gridloop.platform.store.sqlite.connection import DEVICES_TABLE, READINGS_TABLE

    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("ALTER TABLE devices RENAME TO devices_layout1")
        db.execute("DROP INDEX IF EXISTS devices_tenant")
        db.execute(DEVICES_TABLE)
        db.execute("INSERT INTO devices SELECT id, tenant, type, phases, gateway, asset, status, meta"
                   " FROM devices_layout1")
        db.execute("DROP TABLE devices_layout1")
        db.execute("CREATE TABLE IF NOT EXISTS shapes (id INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE)")
        db.execute("CREATE TABLE IF NOT EXISTS rollup_marks (tenant TEXT PRIMARY KEY, upto INTEGER NOT NULL)")
        if db.execute("SELECT 1 FROM sqlite_master WHERE name='readings'").fetchone():
            _convert_readings(db, codec, READINGS_TABLE)
        db.execute("CREATE TABLE IF NOT EXISTS store_info (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT OR REPLACE INTO store_info VALUES (?, ?)", (LAYOUT_KEY, str(LAYOUT)))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        codec.forget()  # shapes it learnt were rolled back too
        raise


def _convert_readings(db: sqlite3.Connection, codec: ShapeCodec, readings_table: str) -> None:
    db.execute("ALTER TABLE readings RENAME TO readings_layout1")
    db.execute(readings_table)
    after: tuple = ("", "", -1)
    last_ts: dict[str, int] = {}
    while True:
        rows = db.execute("SELECT tenant, dev, ts, seq, q FROM readings_layout1 WHERE (tenant, dev, ts) > (?, ?, ?)"
                          " ORDER BY tenant, dev, ts LIMIT ?", (*after, BATCH)).fetchall()
        if not rows:
            break
        by_tenant: dict[str, list[Reading]] = {}
        for tenant, dev, ts, seq, q in rows:
            by_tenant.setdefault(tenant, []).append(Reading(dev, ts, seq, orjson.loads(q)))
            last_ts[tenant] = max(last_ts.get(tenant, ts), ts)
        for tenant, readings in by_tenant.items():
            db.executemany("INSERT INTO readings VALUES (?,?,?,?,?,?)", codec.rows(db, tenant, readings))
        after = rows[-1][:3]
    db.execute("DROP TABLE readings_layout1")
    db.executemany("INSERT OR REPLACE INTO rollup_marks VALUES (?, ?)", [(t, ts + 1) for t, ts in last_ts.items()])
