"""The rollup fold follows the fleet's clock: one device with a wrong clock cannot make everyone's readings late."""

from __future__ import annotations

from pathlib import Path

from gridloop.platform.envelope import Reading
from gridloop.platform.rollup_schedule import MARGIN_MS, MINUTE_MS, RollupSchedule
from gridloop.platform.store.sqlite import SqliteStore

T0 = 1768924800000  # 2026-01-20T16:00Z: a simulated evening
YEAR_MS = 330 * 86_400_000
P = "electricity.power.active.total"
TENANT = "lab"


def _minute(minute: int, devices: int = 100) -> list[Reading]:
    return [Reading(f"m{i:05d}", T0 + minute * MINUTE_MS, minute, {P: float(i)}) for i in range(devices)]


def _rollup_rows(store: SqliteStore, since_ms: int) -> int:
    return store._db.execute("SELECT count(*) FROM rollups WHERE tenant=? AND b>=?", (TENANT, since_ms)).fetchone()[0]


def test_a_device_stamping_the_wall_clock_does_not_move_the_fleets_fold_mark(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "store.db"))
    schedule = RollupSchedule()
    for minute in range(6):
        batches = [_minute(minute)]
        if minute == 1:  # a probe (or an RTC reset) stamps its reading most of a year ahead, in a batch of its own
            batches.append([Reading("probe", T0 + YEAR_MS, 1, {P: 1.0})])
        for batch in batches:
            store.insert_readings(TENANT, batch)
            schedule.note(TENANT, batch)
            schedule.run_due(store, force=True)
    mark = store._db.execute("SELECT upto FROM rollup_marks WHERE tenant=?", (TENANT,)).fetchone()[0]
    assert mark <= T0 + 5 * MINUTE_MS - MARGIN_MS + MINUTE_MS
    # the next minute's readings are on time: stored raw and folded later, one upsert per bucket, not on arrival
    store.insert_readings(TENANT, _minute(6))
    assert _rollup_rows(store, T0 + 6 * MINUTE_MS) == 0
    assert schedule.data_now(TENANT) == T0 + 5 * MINUTE_MS  # the median device's newest reading, not the probe's
    store.close()


def test_a_lone_device_ahead_never_sets_the_clock_even_among_few() -> None:
    schedule = RollupSchedule()
    schedule.note(TENANT, [Reading("probe", T0 + YEAR_MS, 1, {P: 1.0})])
    assert schedule.data_now(TENANT) == T0 + YEAR_MS  # alone, it is the clock: the store folds nothing before it
    schedule.note(TENANT, [Reading("ss0", T0, 1, {P: 1.0})])
    assert schedule.data_now(TENANT) == T0  # of two, the older: the probe cannot pull the fold past the meter
    schedule.note(TENANT, _minute(10, devices=10))
    assert schedule.data_now(TENANT) == T0 + 10 * MINUTE_MS


def test_a_first_reading_from_the_future_does_not_make_the_fleets_readings_late(tmp_path: Path) -> None:
    """The tenant's first batch sets its fold mark; a probe publishing first must not set it for everyone."""
    store = SqliteStore(str(tmp_path / "store.db"))
    store.insert_readings(TENANT, [Reading("probe", T0 + YEAR_MS, 1, {P: 1.0})])
    for minute in range(3):
        store.insert_readings(TENANT, _minute(minute))
    assert _rollup_rows(store, T0) == 0  # on time: stored raw, to be folded once a bucket at a time, not on arrival
    mark = store._db.execute("SELECT upto FROM rollup_marks WHERE tenant=?", (TENANT,)).fetchone()[0]
    assert mark == T0
    assert store.materialize_rollups(TENANT, T0 + 2 * MINUTE_MS) == 200  # the first two minutes, folded once
    store.insert_readings(TENANT, [Reading("m00000", T0 + 30_000, 9, {P: 5.0})])  # now truly late: folded on arrival
    n = store._db.execute("SELECT n FROM rollups WHERE tenant=? AND dev='m00000' AND q=? AND res=? AND b=?",
                          (TENANT, P, MINUTE_MS, T0)).fetchone()
    assert n == (2,)
    store.close()
