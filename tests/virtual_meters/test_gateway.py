"""Store-and-forward gateway: Turin's 1 Hz disaggregation threshold, outages, overflow; all seeded."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gridloop.virtual_meters.gateway import Gateway, completeness, daily_counts
from gridloop.virtual_meters.links.base import cells_round_robin
from gridloop.virtual_meters.links.cellular import GPRS, HOME_GATEWAY_4G, CellularLink
from gridloop.virtual_meters.links.plc_g3 import PLCG3Link, PLCParams
from gridloop.virtual_meters.links.rf_mesh import MAX_HOPS, RF_MESH_LAB, RFMeshLink, draw_hops

DAY_S = 86_400
DISAGGREGATION_MIN = 84_000  # D6.3 4.2.1: below this many 1 Hz samples a day, NIALM fails
TURIN_METERS = 73
TURIN_GATEWAYS = 10


def sample_block(meters: np.ndarray, t0: float, dt_s: int) -> tuple[np.ndarray, np.ndarray]:
    """1 Hz readings of every meter in [t0, t0 + dt_s), as (meter, ts) arrays."""
    return np.repeat(meters, dt_s), np.tile(t0 + np.arange(dt_s, dtype=float), meters.size)


def run_turin_plc_day(buffering: bool, seed: int = 11, dt_s: int = 60) -> tuple[np.ndarray, Gateway]:
    """One day of 1 Hz readings from 73 meters over 10 PLC G3 cells, then an hour to drain."""
    rng = np.random.default_rng(seed)
    link = PLCG3Link(PLCParams(), TURIN_METERS, rng, cells_round_robin(TURIN_METERS, TURIN_GATEWAYS))
    gw = Gateway(link, capacity_readings=50_000, buffering=buffering, bytes_per_reading=60)
    meters = np.arange(TURIN_METERS)
    received = np.zeros(TURIN_METERS, dtype=np.int64)
    for t in range(0, DAY_S + 3600, dt_s):
        m, ts = sample_block(meters, float(t), dt_s) if t < DAY_S else (meters[:0], np.zeros(0))
        step = gw.step(float(t), m, ts, float(dt_s))
        received += np.bincount(step.meter, minlength=TURIN_METERS)  # every reading is of this day
    return received, gw


@pytest.fixture(scope="module")
def turin_days() -> dict[bool, tuple[np.ndarray, Gateway]]:
    return {buffering: run_turin_plc_day(buffering) for buffering in (False, True)}


def test_plc_without_buffering_falls_below_disaggregation_threshold(turin_days) -> None:
    received, gw = turin_days[False]
    assert np.median(received) < DISAGGREGATION_MIN
    assert (received < DISAGGREGATION_MIN).mean() >= 0.8
    assert gw.total_lost == TURIN_METERS * DAY_S - received.sum()


def test_plc_with_gateway_buffer_delivers_every_sample(turin_days) -> None:
    received, gw = turin_days[True]
    assert (received == DAY_S).all()
    np.testing.assert_array_equal(completeness(np.full(TURIN_METERS, DAY_S), received), 1.0)
    assert gw.total_lost == 0 and gw.total_dropped_overflow == 0
    assert gw.buffered == 0


def home_gateway(buffering: bool, capacity: int = 100_000, seed: int = 12) -> Gateway:
    rng = np.random.default_rng(seed)
    link = CellularLink(replace(HOME_GATEWAY_4G, dropouts_per_hour=0.0), 5, rng)
    link.channel.bad[:] = False  # start connected, no short drops: only the injected outage matters in these tests
    return Gateway(link, capacity_readings=capacity, buffering=buffering, bytes_per_reading=80)


def run_with_outage(gw: Gateway, outage: tuple[int, int], until: int = 3600, broker: bool = False):
    meters = np.arange(gw.n_meters)
    got_m, got_ts, got_arr = [], [], []
    for t in range(0, until, 10):
        down = outage[0] <= t < outage[1]
        if broker:
            gw.set_broker_up(not down)
        else:
            gw.link.set_down(down)
        m, ts = sample_block(meters, float(t), 10) if t < until - 600 else (meters[:0], np.zeros(0))
        s = gw.step(float(t), m, ts, 10.0)
        got_m.append(s.meter)
        got_ts.append(s.ts_s)
        got_arr.append(s.arrival_s)
    return np.concatenate(got_m), np.concatenate(got_ts), np.concatenate(got_arr)


@pytest.mark.parametrize("broker", [False, True], ids=["link_outage", "broker_outage"])
def test_buffer_resends_everything_after_an_outage(broker: bool) -> None:
    gw = home_gateway(buffering=True)
    m, ts, arrival = run_with_outage(gw, (600, 1200), broker=broker)
    expected = gw.n_meters * 3000
    assert m.size == expected  # each reading exactly once
    assert daily_counts(m, ts, gw.n_meters, 0.0).sum() == expected
    during = (ts >= 600) & (ts < 1200)
    assert (arrival[during] >= 1200).all()  # held until the outage ended
    assert (arrival >= ts).all()
    assert np.median(arrival[~during] - ts[~during]) < 2.0


def test_without_buffering_an_outage_loses_its_readings() -> None:
    gw = home_gateway(buffering=False)
    m, ts, _ = run_with_outage(gw, (600, 1200))
    during = (ts >= 600) & (ts < 1200)
    assert not during.any()
    assert gw.total_lost == gw.n_meters * 600
    assert m.size + gw.total_lost == gw.n_meters * 3000


def test_full_buffer_drops_oldest_first() -> None:
    gw = home_gateway(buffering=True, capacity=200)
    m, ts, _ = run_with_outage(gw, (600, 1200))
    dropped = gw.n_meters * (600 - 200)  # each home gateway stores 200 of its 600 outage readings
    assert gw.total_dropped_overflow == dropped
    missing_ts = np.setdiff1d(np.arange(3000.0), np.unique(ts))
    # what is missing is the oldest part of the outage, what survived is its newest part
    np.testing.assert_array_equal(missing_ts, np.arange(600.0, 600.0 + dropped / gw.n_meters))
    assert m.size == gw.n_meters * 3000 - dropped


def test_gprs_heat_meters_keep_complete_days_with_a_small_buffer() -> None:
    """Hyllie substation/heat meters: 10 s readings over GPRS outages, buffered, for three days."""
    rng = np.random.default_rng(13)
    n = 30
    gw = Gateway(CellularLink(GPRS, n, rng), capacity_readings=10_000, buffering=True, bytes_per_reading=120)
    meters = np.arange(n)
    received = np.zeros((n, 3), dtype=np.int64)
    for t in range(0, 3 * DAY_S + 3600, 300):
        m = np.repeat(meters, 30) if t < 3 * DAY_S else meters[:0]
        ts = np.tile(t + 10.0 * np.arange(30), n) if t < 3 * DAY_S else np.zeros(0)
        s = gw.step(float(t), m, ts, 300.0)
        received += daily_counts(s.meter, s.ts_s, n, 0.0, n_days=3)
    assert (received == DAY_S // 10).all()


def test_completeness_and_daily_counts() -> None:
    np.testing.assert_allclose(
        completeness(np.array([86_400, 10, 0]), np.array([84_000, 12, 0])), [84_000 / 86_400, 1.0, 1.0]
    )
    meter = np.array([0, 0, 0, 1, 1])
    ts = np.array([5.0, 5.0, DAY_S + 1.0, 3.0, 2 * DAY_S + 1.0])  # a duplicate and an out-of-range one
    np.testing.assert_array_equal(daily_counts(meter, ts, 2, 0.0, n_days=2), [[1, 1], [1, 0]])


@pytest.mark.parametrize("buffering", [False, True])
def test_gateway_tracks_readings_queued_inside_an_overloaded_mesh(buffering: bool) -> None:
    """Readings map one-to-one onto the mesh's per-node queues; none invented, none double counted."""
    rng = np.random.default_rng(14)
    n = 106
    link = RFMeshLink(RF_MESH_LAB, draw_hops(rng, n, 2.0, MAX_HOPS), rng)
    gw = Gateway(link, capacity_readings=2_000, buffering=buffering)
    phase = rng.integers(0, 5, n)
    seen: list[np.ndarray] = []
    offered = 0
    for t in range(900):
        due = np.flatnonzero((t - phase) % 5 == 0) if t < 840 else np.zeros(0, dtype=np.int64)
        offered += due.size
        s = gw.step(float(t), due, np.full(due.size, float(t)), 1.0)
        seen.append(s.meter * 10_000 + s.ts_s.astype(np.int64))
        if not buffering:
            assert gw.buffered == link.queue.sum()
    keys = np.concatenate(seen)
    assert np.unique(keys).size == keys.size
    accounted = keys.size + gw.total_lost + gw.total_dropped_overflow + gw.buffered
    assert accounted == offered
    assert keys.size < 0.9 * offered  # 5 s data does not fit, with or without the buffer


@pytest.mark.parametrize("buffering", [False, True])
def test_1hz_home_gateway_over_4g_needs_buffering_for_a_complete_day(buffering: bool) -> None:
    """Turin's 1 Hz home meters over 4G: short drops lose ~5 % of a day unbuffered; a buffer keeps all of it."""
    n = 20
    gw = Gateway(CellularLink(HOME_GATEWAY_4G, n, np.random.default_rng(4)), capacity_readings=50_000,
                 buffering=buffering, bytes_per_reading=80)
    meters, received = np.arange(n), np.zeros(n, dtype=np.int64)
    for t in range(0, DAY_S + 3600, 60):
        m, ts = sample_block(meters, float(t), 60) if t < DAY_S else (meters[:0], np.zeros(0))
        received += np.bincount(gw.step(float(t), m, ts, 60.0).meter, minlength=n)
    if buffering:
        assert (received == DAY_S).all() and gw.total_lost == 0
    else:
        assert (received < DISAGGREGATION_MIN).all() and (received > 0.9 * DAY_S).all()
        assert gw.total_lost == n * DAY_S - received.sum()
