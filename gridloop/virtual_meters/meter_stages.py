"""The meters as stages: each step they integrate what the grid delivered and, when due, take readings.

A stage's output says, for every sample, whether it goes to the DIA now (``publish``) and whether it is a
reading as the meter took it (``record``; what the link delivers later is published, not recorded again).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gridloop.grid_models.grid_stage import GridOutput, GridStage
from gridloop.scenario.model import CommLink, Meters
from gridloop.stage import Clock, Outputs
from gridloop.virtual_meters.electricity import MeterSample
from gridloop.virtual_meters.gateway import Gateway
from gridloop.virtual_meters.home_meters import HomeMeterFleet, WithinStep
from gridloop.virtual_meters.meter_types.substation import SubstationMeterBank
from gridloop.virtual_meters.reading_path import DegradableLink, ReadingPath, build_link, drain_paths

GRID_FREQUENCY_HZ = 50.0


@dataclass(frozen=True)
class Reading:
    sample: MeterSample
    publish: bool
    record: bool


@dataclass
class Readings:
    """What a meter stage produced in one step, in order."""

    items: list[Reading] = field(default_factory=list)

    def add(self, sample: MeterSample, publish: bool = True, record: bool = True) -> None:
        self.items.append(Reading(sample, publish, record))


class HomeReadings(Readings):
    """Home meters, their 1 Hz meters and blink detectors, and what the link delivered."""


class SubstationReadings(Readings):
    """The grid meters on the transformers' LV side."""


class UtilityReadings(Readings):
    """Heat, water and gas meters."""


class HomeMeterStage:
    """Home meters (sampled at their interval) and their reading path (link, gateway) to the DIA."""

    def __init__(self, meters: HomeMeterFleet, path: ReadingPath, period_ms: int, offset_ms: int = 0,
                 path_1hz: ReadingPath | None = None) -> None:
        """``path_1hz``: the 1 Hz meters' own way to the DIA (default: straight)."""
        self.meters, self.path, self.period_ms, self.offset_ms = meters, path, period_ms, offset_ms
        self.path_1hz = path_1hz if path_1hz is not None else ReadingPath(None)

    def step(self, clock: Clock, inputs: Outputs) -> HomeReadings:
        grid = inputs.get(GridOutput)
        meters, now, out = self.meters, clock.unix_ms, HomeReadings()
        v3 = grid.bus_v_phase[meters.bus_index]
        sample = None
        if meters.due(clock.now_s):
            p3, q3 = grid.served_home_phase_power()
            sample = meters.sample(now, v3, p3, q3)
            out.add(sample, publish=False)  # it goes through the link
            pulses = meters.blink_sample(now)
            if pulses is not None:  # blink detectors report over the home gateway
                out.add(pulses)
        seconds = meters.sample_1hz(now, int(clock.period_s), v3, grid.home_p_w,
                                    within_step(grid, meters, int(clock.period_s)))
        for second in seconds:
            out.add(second, publish=False)  # through the 1 Hz meters' own link (their home gateway)
        for delivered in self.path.step(clock.now_s, clock.period_s, sample):
            out.add(delivered, record=False)
        for delivered in self.path_1hz.step(clock.now_s, clock.period_s, seconds):
            out.add(delivered, record=False)
        meters.integrate(grid.home_p_w, clock.period_s, now)
        return out

    def drain(self, end_ms: int, period_ms: int) -> list[MeterSample]:
        """After the last step the gateways go on forwarding what they hold."""
        return drain_paths([self.path, self.path_1hz], end_ms, period_ms)


def within_step(grid: GridOutput, meters: HomeMeterFleet, seconds: int) -> WithinStep | None:
    """The 1 Hz homes' own demand within a step longer than a second (None: every second at the step's value)."""
    hz = meters.hz_homes
    if seconds <= 1 or not hz.size:
        return None
    own = grid.home_seconds(hz)
    if own is None or own[0].shape[1] != seconds:
        return None
    r, x = grid.home_loop_impedance(hz, meters.phase[hz])
    return WithinStep.from_demand(own[0], own[1], grid.home_energized(hz), r, x)


class SubstationMeterStage:
    """A grid meter on each transformer's LV side; a balanced solve puts a third of the power on each phase."""

    def __init__(self, bank: SubstationMeterBank, period_ms: int, offset_ms: int = 0) -> None:
        self.bank, self.period_ms, self.offset_ms = bank, period_ms, offset_ms

    def step(self, clock: Clock, inputs: Outputs) -> SubstationReadings:
        state, out = inputs.get(GridOutput).state, SubstationReadings()
        if state.trafo_p_mw is None or not len(self.bank):
            return out
        p3 = np.repeat(state.trafo_p_mw[:, None] * 1e6 / 3, 3, axis=1)
        q3 = np.repeat(state.trafo_q_mvar[:, None] * 1e6 / 3, 3, axis=1)
        if self.bank.due(clock.now_s):
            v3 = np.repeat(inputs.get(GridOutput).trafo_lv_v_phase()[:, None], 3, axis=1)
            out.add(self.bank.sample(clock.unix_ms, v3, p3, q3, frequency_hz=GRID_FREQUENCY_HZ))
        self.bank.integrate(p3, q3, clock.period_s)
        return out


def build_home_meters(cfg: Meters, grid: GridStage, seed: int) -> HomeMeterFleet:
    """A meter in every home of the grid, as the meters section says (interval, 1 Hz meters, blink detectors)."""
    rng = np.random.default_rng([seed, 1])
    meter_ids = [f"m{i + 1:05d}" for i in range(len(grid.household_index))]
    return HomeMeterFleet(meter_ids, grid.household_bus, grid.demand.home_phase(), _one_hz_homes(grid, cfg.home_1hz),
                          cfg.interval, np.random.default_rng([seed, 7]),
                          initial_wh=rng.uniform(1e5, 5e7, len(meter_ids)), blink_detectors=cfg.blink_detectors)


def _one_hz_homes(grid: GridStage, count: int | None) -> np.ndarray:
    """Which homes carry a 1 Hz disaggregation meter: the grid's own (a ``sampling_s`` of 1) or the first N."""
    n = len(grid.household_index)
    if count is not None:
        return np.arange(n) < count
    if "sampling_s" in grid.net.load.columns:
        return (grid.net.load.sampling_s.to_numpy(dtype=float)[grid.household_index] == 1.0)
    return np.zeros(n, dtype=bool)


def build_substation_meters(grid: GridStage, interval_s: float, seed: int) -> SubstationMeterBank:
    """A grid meter on each transformer's LV side (the pilots' substation meters, accuracy class C)."""
    ids = [f"ss{i}" for i in range(len(grid.net.trafo))]
    rng = np.random.default_rng([seed, 6])
    return SubstationMeterBank(ids, interval_s, rng, initial_import_wh=rng.uniform(1e7, 1e9, len(ids)))


def build_reading_path(cfg: CommLink, n_meters: int, seed: int, stream: int = 0) -> ReadingPath:
    """The link section's way from the home meters to the DIA (straight when the link is ideal).

    ``stream`` keeps the draws of several paths (interval meters: 0, 1 Hz meters: 1) apart.
    """
    def rng(k: int) -> np.random.Generator:
        return np.random.default_rng([seed, k] if stream == 0 else [seed, k, stream])

    link = build_link(cfg.technology, n_meters, cfg.gateways, cfg.profile, rng(2))
    if link is None:
        return ReadingPath(None)
    link = DegradableLink(link, rng(8))
    gateway = Gateway(link, cfg.buffer_readings, buffering=cfg.buffering, bytes_per_reading=cfg.bytes_per_reading,
                      rng=rng(3))
    return ReadingPath(gateway, cfg.bytes_per_reading)
