"""The SQLite store's counters (what /metrics and completeness read) always equal a count of the stored rows:
after redelivery, late readings, retention, on spans not on whole hours, and in a store written before they
existed (built from its rows when it is first opened)."""

from __future__ import annotations

import random
import sqlite3

from gridloop.platform.envelope import Reading
from gridloop.platform.store.sqlite import SqliteStore

T0 = 1767225600000  # 2026-01-01T00:00Z
HOUR = 3_600_000
Q = "electricity.voltage.l1"


def _raw_per_device(path: str, tenant: str, lo: int, hi: int) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT dev, count(*) FROM readings WHERE tenant=? AND ts>=? AND ts<? GROUP BY dev",
                               (tenant, lo, hi)))


def _assert_counters_are_the_rows(path: str) -> None:
    """Every hour and day counter row equals a count of the rows (none left at zero after a delete)."""
    with sqlite3.connect(path) as db:
        for table, unit in (("reading_counts", HOUR), ("reading_day_counts", 24 * HOUR)):
            kept = db.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
            rows = db.execute(f"SELECT tenant, ts / {unit}, dev, count(*) FROM readings GROUP BY 1, 2, 3"
                              " ORDER BY 1, 2, 3").fetchall()
            assert kept == rows, table


def test_counters_equal_the_raw_rows_on_any_span(tmp_path):
    path = str(tmp_path / "s.db")
    store = SqliteStore(path)
    rng = random.Random(15)
    stamps = {dev: sorted(rng.sample(range(0, 80 * HOUR, 60_000), 200)) for dev in ("m1", "m2", "m3")}
    batch = [Reading(dev, T0 + ts, k, {Q: float(k)}) for dev, tss in stamps.items() for k, ts in enumerate(tss)]
    rng.shuffle(batch)
    for i in range(0, len(batch), 150):  # each part twice: a redelivery counts nothing
        assert store.insert_readings("alpha", batch[i:i + 150]) == len(batch[i:i + 150])
        assert store.insert_readings("alpha", batch[i:i + 150] + batch[:3]) == 0
    store.insert_readings("beta", batch[:10])
    assert store.count_readings("alpha") == 600 and store.count_readings("beta") == 10
    _assert_counters_are_the_rows(path)
    for _ in range(200):  # spans within an hour, of hours, and over whole days (day counters), on and off units
        lo = T0 + rng.randrange(-HOUR, 81 * HOUR, rng.choice((1, 60_000, HOUR)))
        hi = lo + rng.randrange(0, rng.choice((HOUR, 12 * HOUR, 70 * HOUR)), rng.choice((1, 60_000, HOUR)))
        assert store.readings_per_device("alpha", lo, hi) == _raw_per_device(path, "alpha", lo, hi), (lo, hi)
    store.materialize_rollups("alpha", T0 + 50 * HOUR)
    store.apply_retention("alpha", raw_days=1.5, now=T0 + 50 * HOUR + 7, batch=33)  # cut-off in the second day
    assert store.count_readings("alpha") == sum(_raw_per_device(path, "alpha", 0, 2**62).values()) < 600
    _assert_counters_are_the_rows(path)
    for lo, hi in ((T0, T0 + 80 * HOUR), (T0 + 13 * HOUR + 5, T0 + 72 * HOUR - 5), (T0 + 24 * HOUR, T0 + 48 * HOUR)):
        assert store.readings_per_device("alpha", lo, hi) == _raw_per_device(path, "alpha", lo, hi), (lo, hi)
    assert store.readings_per_device("alpha", None, None) == _raw_per_device(path, "alpha", 0, 2**62)
    store.add_rejected("alpha", "t", "bad", b"x")
    store.add_rejected_many([(None, "t", "bad", b"x"), ("alpha", "t", "bad", b"y"), ("beta", "t", "bad", b"z")])
    assert (store.count_rejected("alpha"), store.count_rejected("beta"), store.count_rejected(None)) == (2, 1, 1)
    store.close()


def test_a_store_without_counters_gets_them_built_once(tmp_path):
    path = str(tmp_path / "old.db")
    store = SqliteStore(path)
    store.insert_readings("alpha", [Reading("m1", T0 + k * 600_000, k, {Q: 1.0}) for k in range(20)])
    store.add_rejected(None, "t", "bad", b"x")
    store.close()
    with sqlite3.connect(path) as db:  # as the store was before counters were kept
        db.executescript("DROP TABLE reading_counts; DROP TABLE tenant_counts; DROP TABLE rejected_counts;"
                         "DELETE FROM store_info WHERE key='counters';")
    store = SqliteStore(path)
    assert store.count_readings("alpha") == 20 and store.count_rejected(None) == 1
    assert store.readings_per_device("alpha", T0 + HOUR, T0 + 2 * HOUR + 1) == {"m1": 7}
    store.insert_readings("alpha", [Reading("m1", T0 + 20 * 600_000, 20, {Q: 1.0})])
    store.close()
    store = SqliteStore(path)  # built once: reopening keeps counting from where it was
    assert store.count_readings("alpha") == 21
    store.close()


def test_a_store_with_hour_counters_only_gets_day_counters_built_once(tmp_path):
    path = str(tmp_path / "hours.db")
    store = SqliteStore(path)
    store.insert_readings("alpha", [Reading(f"m{k % 3}", T0 + k * 3_000_000, k, {Q: 1.0}) for k in range(90)])
    store.close()
    with sqlite3.connect(path) as db:  # as the store was before day counters were kept
        db.executescript("DROP TABLE reading_day_counts; DELETE FROM store_info WHERE key='day_counters';")
    store = SqliteStore(path)
    _assert_counters_are_the_rows(path)
    assert store.readings_per_device("alpha", T0, T0 + 48 * HOUR) == _raw_per_device(path, "alpha", T0, T0 + 48 * HOUR)
    store.insert_readings("alpha", [Reading("m0", T0 + 1, 0, {Q: 1.0})])
    store.close()
    store = SqliteStore(path)  # built once: the new reading is counted once
    _assert_counters_are_the_rows(path)
    assert store.count_readings("alpha") == 91
    store.close()
