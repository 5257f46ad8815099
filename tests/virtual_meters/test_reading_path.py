"""The meter → link → gateway → DIA path: link degradation loses readings while it lasts, buffering recovers them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gridloop.virtual_meters.electricity import MeterSample
from gridloop.virtual_meters.gateway import Gateway
from gridloop.virtual_meters.links.cellular import HOME_GATEWAY_4G, CellularLink
from gridloop.virtual_meters.reading_path import DegradableLink, ReadingPath


def _path(buffering: bool) -> ReadingPath:
    steady_4g = replace(HOME_GATEWAY_4G, dropouts_per_hour=0.0)  # only the injected degradation loses readings
    link = DegradableLink(CellularLink(steady_4g, 50, np.random.default_rng(1)), np.random.default_rng(2))
    return ReadingPath(Gateway(link, 100_000, buffering=buffering, rng=np.random.default_rng(3)))


def _sample(k: int) -> MeterSample:
    return MeterSample(60_000 * k, [f"m{i}" for i in range(50)], np.full(50, k), {"x": np.arange(50.0)})


def _run(path: ReadingPath, degraded: range, steps: int = 30) -> int:
    delivered = 0
    for k in range(steps):
        path.gateway.link.extra_loss = 0.5 if k in degraded else 0.0
        delivered += sum(len(s.devices) for s in path.step(60.0 * k, 60.0, _sample(k)))
    for k in range(steps, steps + 30):  # let the gateway forward what it still holds
        path.gateway.link.extra_loss = 0.0
        delivered += sum(len(s.devices) for s in path.step(60.0 * k, 60.0, None))
    return delivered


def test_degradation_loses_about_its_share_without_buffering():
    healthy, degraded = _path(False), _path(False)
    assert _run(healthy, range(0)) == 30 * 50
    got = _run(degraded, range(10, 20))
    lost = 30 * 50 - got
    assert 0.35 * 500 < lost < 0.65 * 500  # about half of the 10 degraded steps' readings
    assert degraded.counters.lost_in_link == lost


def test_buffering_gateways_deliver_everything_despite_degradation():
    path = _path(True)
    assert _run(path, range(10, 20)) == 30 * 50
    assert path.counters.lost_in_link == 0


def test_a_window_of_one_second_samples_arrives_grouped_by_instant():
    """A 1 Hz meter's step: 60 samples of the same meters go through the link and come out per instant."""
    path = _path(True)
    window = [MeterSample(1000 * k, [f"m{i}" for i in range(50)], np.full(50, k), {"x": np.arange(50.0) + k})
              for k in range(60)]
    got = path.step(0.0, 60.0, window)
    assert [s.ts_ms for s in got] == [s.ts_ms for s in window]
    for s in got:
        assert s.devices == [f"m{i}" for i in range(50)]
        np.testing.assert_array_equal(s.quantities["x"], np.arange(50.0) + s.ts_ms // 1000)
    assert ReadingPath(None).step(0.0, 60.0, window) == window
