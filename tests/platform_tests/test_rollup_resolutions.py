"""No stored resolution whose bucket holds fewer than 60 of a device's readings (SQLite): a 5-minute meter keeps only
daily buckets, yet its 1-minute to hourly aggregates are the same as those of a twin meter without an interval, which
keeps every resolution, and the same as computed from the raw readings, before and after retention deletes the raw
readings."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from gridloop.platform.api import create_app
from gridloop.platform.envelope import Reading
from gridloop.platform.rollups import RESOLUTIONS
from gridloop.platform.store.base import DeviceRecord
from gridloop.platform.store.sqlite import SqliteStore

T0 = 1767225600000  # 2026-01-01T00:00Z
MIN, H, DAY = 60_000, 3_600_000, 86_400_000
P, V = "electricity.power.active.total", "electricity.voltage.l1"
SPAN = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T03:00:00Z"}


def _rows(store: SqliteStore, dev: str) -> dict[int, int]:
    return dict(store._db.execute("SELECT res, count(*) FROM rollups WHERE dev=? GROUP BY res", (dev,)).fetchall())


def _aggregates(client: TestClient, dev: str, interval: str, agg: str) -> list[tuple[int, float, int]]:
    r = client.get(f"/api/v1/devices/{dev}/aggregates", params={**SPAN, "quantity": P, "interval": interval,
                                                                 "agg": agg})
    assert r.status_code == 200, r.text
    return [(b["start"], b["value"], b["count"]) for b in r.json()["buckets"]]


def _close(got: list[tuple[int, float, int]], want: list[tuple[int, float, int]]) -> bool:
    """The same buckets and counts, values equal but for the last bits of a sum taken in another order."""
    return [(b, pytest.approx(v, rel=1e-12), n) for b, v, n in got] == want


@pytest.fixture
def five_minute(tmp_path):
    """m5 reads every 5 min (interval_s 300) and m0 (no interval) reads the same values, 3 hours, jittered."""
    store = SqliteStore(str(tmp_path / "s.db"))
    key = store.create_tenant("alpha")
    store.put_devices([DeviceRecord("alpha", "m5", "electricity_meter", meta={"interval_s": 300}),
                       DeviceRecord("alpha", "m0", "electricity_meter")])
    rng = np.random.default_rng(15)
    ts = T0 + 300_000 * np.arange(36, dtype=np.int64) + rng.integers(0, 299_000, 36)
    values = np.round(rng.normal(800, 300, 36), 3)
    for lo in range(0, 36, 12):  # in three batches, each folded after it (the fold also runs between batches)
        store.insert_readings("alpha", [Reading(d, int(t), i, {P: float(v), V: 230.0}) for d in ("m5", "m0")
                                        for i, t, v in zip(range(lo, lo + 12), ts[lo:lo + 12], values[lo:lo + 12],
                                                           strict=True)])
        store.materialize_rollups("alpha", int(ts[lo + 11]) - 2 * MIN)
    client = TestClient(create_app(store, None))
    client.headers["Authorization"] = f"Bearer {key}"
    yield store, client, ts, values
    store.close()


def test_a_five_minute_meter_has_no_one_minute_buckets_and_the_same_aggregates(five_minute):
    store, client, ts, values = five_minute
    store.materialize_rollups("alpha", T0 + 3 * H)
    assert set(_rows(store, "m5")) == {RESOLUTIONS["1d"]} and _rows(store, "m0")[RESOLUTIONS["1m"]] == 2 * 36
    assert _rows(store, "m5")[RESOLUTIONS["1d"]] == _rows(store, "m0")[RESOLUTIONS["1d"]] == 2
    # a late reading, older than the mark, is folded at once: still only daily buckets for m5
    store.insert_readings("alpha", [Reading(d, T0 + 7, 99, {P: 5.0, V: 230.0}) for d in ("m5", "m0")])
    assert set(_rows(store, "m5")) == {RESOLUTIONS["1d"]}
    stamps, vals = np.append(ts, T0 + 7), np.append(values, 5.0)
    raw = {}  # the 1-minute means computed from the raw readings
    for t, v in zip(stamps.tolist(), vals.tolist(), strict=True):
        raw.setdefault(t - t % MIN, []).append(v)
    expected = [(b, float(np.mean(vs)), len(vs)) for b, vs in sorted(raw.items())]
    for interval, agg in (("1m", "mean"), ("1m", "last"), ("5m", "max"), ("15m", "sum"), ("1h", "count"),
                          ("1h", "min"), ("1d", "mean")):
        got, twin = _aggregates(client, "m5", interval, agg), _aggregates(client, "m0", interval, agg)
        assert _close(got, twin), (interval, agg)
        if (interval, agg) == ("1m", "mean"):
            assert [(b, pytest.approx(v), n) for b, v, n in got] == expected


def test_retention_keeps_the_fine_buckets_of_the_raw_readings_it_deletes(five_minute):
    store, client, _, _ = five_minute
    now, cut = T0 + 3 * H + DAY, T0 + 90 * MIN + 30_000
    # two readings in the minute of the cut, one either side (a meter may read more often than it says)
    store.insert_readings("alpha", [Reading(d, t, 0, {P: float(t % 7), V: 230.0}) for d in ("m5", "m0")
                                    for t in (cut - 1000, cut + 1000)])
    before = {i: _aggregates(client, "m0", i, "mean") for i in ("1m", "5m", "15m", "1h")}
    # raw readings older than the cut go (for m5 the cut is aligned down to its coarsest bucket not stored, the hour)
    raw_days = (now - cut) / DAY
    deleted = store.apply_retention("alpha", raw_days=raw_days, now=now, batch=4)
    assert 0 < deleted["raw"] < 2 * 38
    left = {d: [r.ts for r in store.query_readings("alpha", d, None, None, 100)] for d in ("m5", "m0")}
    assert min(left["m0"]) >= cut and min(left["m5"]) >= T0 + H
    assert left["m5"] == sorted(t for t in left["m5"] if t < cut) + left["m0"]  # m5 keeps the rest of the hour
    assert any(t < cut for t in left["m5"])
    assert 0 < _rows(store, "m5")[RESOLUTIONS["1m"]] < 2 * 36  # only the buckets of the readings deleted
    for interval in ("1m", "5m", "15m", "1h"):
        assert _close(_aggregates(client, "m5", interval, "mean"), before[interval]), interval
    # run again: nothing left to delete, nothing folded twice
    assert store.apply_retention("alpha", raw_days=raw_days, now=now, batch=4)["raw"] == 0
    assert _close(_aggregates(client, "m5", "1m", "mean"), before["1m"])


def test_retention_folds_a_buckets_readings_packed_in_different_shapes(tmp_path):
    """A device's batches are packed each in the widths its values need: the hour's readings that leave are folded
    from every packing together, not a bucket per packing of which only the first is kept."""
    store = SqliteStore(str(tmp_path / "s.db"))
    key = store.create_tenant("alpha")
    store.put_devices([DeviceRecord("alpha", "m5", "electricity_meter", meta={"interval_s": 300})])
    values = [100.5 if i % 2 else 4_000_000.25 for i in range(12)]
    for i, v in enumerate(values):  # one batch a reading: small and large values need different packings
        store.insert_readings("alpha", [Reading("m5", T0 + i * 5 * MIN, i, {P: v, V: 230.0 + i})])
    assert store._db.execute("SELECT count(DISTINCT shape) FROM readings WHERE dev='m5'").fetchone()[0] > 1
    store.materialize_rollups("alpha", T0 + H)
    client = TestClient(create_app(store, None))
    client.headers["Authorization"] = f"Bearer {key}"
    span = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z", "interval": "1h"}

    def hour(quantity: str, agg: str) -> list[tuple[int, float, int]]:
        r = client.get("/api/v1/devices/m5/aggregates", params={**span, "quantity": quantity, "agg": agg})
        assert r.status_code == 200, r.text
        return [(b["start"], b["value"], b["count"]) for b in r.json()["buckets"]]

    want = {(P, "mean"): [(T0, pytest.approx(float(np.mean(values))), 12)],
            (P, "max"): [(T0, 4_000_000.25, 12)], (P, "min"): [(T0, 100.5, 12)],
            (V, "last"): [(T0, 241.0, 12)], (V, "sum"): [(T0, pytest.approx(12 * 230.0 + 66), 12)]}
    assert {k: hour(*k) for k in want} == want  # from the raw readings
    deleted = store.apply_retention("alpha", raw_days=1, now=T0 + H + 2 * DAY, batch=100)
    assert deleted["raw"] == 12 and store.query_readings("alpha", "m5", None, None, 100) == []
    assert {k: hour(*k) for k in want} == want  # from the buckets folded as the readings left
    store.close()


def test_retention_completes_a_bucket_folded_before_its_resolution_was_skipped(tmp_path):
    """A store folded while every resolution was kept (a layout-2 store, or a meter whose interval was learnt
    later) holds an hour's bucket up to the mark only; the readings after it are added as they leave."""
    store = SqliteStore(str(tmp_path / "s.db"))
    key = store.create_tenant("alpha")
    store.put_devices([DeviceRecord("alpha", "m5", "electricity_meter")])
    values = [float(10 * i + 1) for i in range(12)]
    readings = [Reading("m5", T0 + i * 5 * MIN, i, {P: v, V: 230.0}) for i, v in enumerate(values)]
    store.insert_readings("alpha", readings[:6])
    store.materialize_rollups("alpha", T0 + 30 * MIN)  # the first half hour folded at every resolution
    assert _rows(store, "m5")[RESOLUTIONS["1h"]] == 2
    store.put_devices([DeviceRecord("alpha", "m5", "electricity_meter", meta={"interval_s": 300})])
    store.insert_readings("alpha", readings[6:])
    store.materialize_rollups("alpha", T0 + H)
    client = TestClient(create_app(store, None))
    client.headers["Authorization"] = f"Bearer {key}"
    want = [(T0, pytest.approx(float(np.mean(values))), 12)]
    params = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z", "quantity": P, "interval": "1h",
              "agg": "mean"}

    def hour() -> list[tuple[int, float, int]]:
        r = client.get("/api/v1/devices/m5/aggregates", params=params)
        assert r.status_code == 200, r.text
        return [(b["start"], b["value"], b["count"]) for b in r.json()["buckets"]]

    assert hour() == want
    assert store.apply_retention("alpha", raw_days=1, now=T0 + H + 2 * DAY, batch=5)["raw"] == 12
    assert hour() == want
    assert store.apply_retention("alpha", raw_days=1, now=T0 + H + 2 * DAY, batch=5)["raw"] == 0
    assert hour() == want  # nothing folded twice
    store.close()
