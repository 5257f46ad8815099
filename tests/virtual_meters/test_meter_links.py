"""Every meter class on its own link: samples are recorded when taken and published only as their link delivers."""

from __future__ import annotations

import numpy as np

from gridloop.scenario.model import CommLink
from gridloop.stage import Clock, Outputs
from gridloop.virtual_meters.electricity import MeterSample
from gridloop.virtual_meters.meter_links import LinkedMeterStage, linked, meter_route
from gridloop.virtual_meters.meter_stages import UtilityReadings

PERIOD_MS = 60_000
WATER = [f"wm{i:04d}" for i in range(40)]
GAS = [f"gm{i:04d}" for i in range(5)]


class TwoKinds:
    """A meter stage sampling 40 water meters every step and 5 gas meters every other step."""

    period_ms, offset_ms = PERIOD_MS, 0

    def step(self, clock: Clock, inputs: Outputs) -> UtilityReadings:
        out, k = UtilityReadings(), clock.now_ms // PERIOD_MS
        out.add(MeterSample(clock.unix_ms, WATER, np.full(40, k), {"water.volume": np.arange(40.0) + k}))
        if k % 2 == 0:
            out.add(MeterSample(clock.unix_ms, GAS, np.full(5, k), {"gas.volume": np.arange(5.0) + k}))
        return out


def _run(stage, steps: int) -> tuple[list[MeterSample], list[MeterSample]]:
    recorded, published = [], []
    for k in range(steps):
        out = stage.step(Clock(k * PERIOD_MS, PERIOD_MS, 1_767_225_600_000), Outputs())
        recorded += [r.sample for r in out.items if r.record]
        published += [r.sample for r in out.items if r.publish]
    return recorded, published


def _readings(samples: list[MeterSample]) -> list[tuple[str, int]]:
    return [(dev, s.ts_ms) for s in samples for dev in s.devices]


def test_an_ideal_link_leaves_the_stage_as_it_is():
    stage = TwoKinds()
    assert linked(stage, [meter_route(WATER, CommLink(), 1, 5), meter_route(GAS, CommLink(), 1, 6)]) is stage
    assert meter_route([], CommLink(technology="wmbus"), 1, 5) is None


def test_a_one_way_link_loses_readings_it_counts_and_publishes_nothing_twice():
    one_way = CommLink(technology="wmbus", buffering=False)
    water = meter_route(WATER, one_way, 3, 5)
    stage = linked(TwoKinds(), [water, None])  # gas stays on an ideal link
    assert isinstance(stage, LinkedMeterStage)
    recorded, published = _run(stage, 240)
    taken, delivered = _readings(recorded), _readings(published)
    assert len(taken) == 240 * 40 + 120 * 5  # every reading recorded once, as taken
    assert len(set(delivered)) == len(delivered) and set(delivered) <= set(taken)
    lost = water.path.counters.lost_in_link
    assert lost > 0 and len(delivered) + lost + water.path.buffered == len(taken)
    assert sum(dev in GAS for dev, _ in delivered) == 120 * 5  # the ideal class goes straight through


def test_a_buffering_link_delivers_every_reading_once_by_the_end():
    gprs = CommLink(technology="gprs", buffering=True)
    routes = [meter_route(WATER, gprs, 4, 5), meter_route(GAS, gprs, 4, 6)]
    stage = linked(TwoKinds(), routes)
    recorded, published = _run(stage, 120)
    published += stage.drain(120 * PERIOD_MS, PERIOD_MS)
    assert sorted(_readings(published)) == sorted(_readings(recorded))
    assert all(r.path.counters.lost_in_link == 0 and r.path.buffered == 0 for r in routes)
