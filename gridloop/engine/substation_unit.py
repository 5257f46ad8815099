"""One substation of a scenario, the unit partitions split: its grid and homes, meters, reading path and KPIs.

``grid.substations: S`` makes a scenario S independent copies of its network. Each copy is built from the
scenario's seed and its own number only, and its devices are namespaced ``s001-``, ``s002-``, ... on the
platform, so partition K/N (the substations i with i % N == K) publishes the same readings whatever N is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridloop.engine.kpis import KpiRecorder
from gridloop.engine.recorder import RunRecorder
from gridloop.engine.stages import (
    GridStage,
    battery_actuators,
    flexible_load_actuators,
    switch_actuators,
    transformer_actuators,
)
from gridloop.engine.utility_stage import UtilityMeterStage
from gridloop.scenario.model import Scenario
from gridloop.virtual_meters.gateway import Gateway
from gridloop.virtual_meters.home_meters import HomeMeterFleet
from gridloop.virtual_meters.meter_types.substation import SubstationMeterBank
from gridloop.virtual_meters.reading_path import DegradableLink, ReadingPath, build_link


@dataclass
class SubstationUnit:
    """Everything of one substation that steps on the shared clock, before it is wired to MQTT."""

    index: int
    prefix: str  # device-id namespace on the platform: "" for a one-substation scenario, else "s001-", ...
    s: Scenario  # the scenario as this substation sees it (its own seed)
    grid: GridStage
    meters: HomeMeterFleet
    actuators: list
    path: ReadingPath
    utilities: UtilityMeterStage
    substation: SubstationMeterBank
    kpi: KpiRecorder
    recorder: RunRecorder

    @property
    def name(self) -> str:
        return self.prefix.rstrip("-") or "substation-1"

    @property
    def meter_count(self) -> int:
        return len(self.meters) + self.utilities.count + len(self.substation) + len(self.meters.blink_homes)


def substation_seed(seed: int, index: int, count: int) -> int:
    """The seed of substation ``index``: the scenario's own for a single substation, else derived from it."""
    if count == 1:
        return seed
    return int(np.random.SeedSequence([seed, 9001, index]).generate_state(1)[0])


def substation_prefix(index: int, count: int) -> str:
    return "" if count == 1 else f"s{index + 1:0{max(3, len(str(count)))}d}-"


def substations_of_partition(count: int, part: int, parts: int) -> list[int]:
    """Which substations partition ``part`` of ``parts`` runs (a single substation: all partitions share it)."""
    if count == 1:
        return [0]
    if parts > count:
        raise ValueError(f"{parts} partitions for {count} substations: a partition runs whole substations, "
                         "so use at most grid.substations partitions")
    return [i for i in range(count) if i % parts == part]


def build_unit(s: Scenario, index: int) -> SubstationUnit:
    count = s.grid.substations
    if count > 1:
        s = s.model_copy(deep=True)
        s.seed = substation_seed(s.seed, index, count)
    grid = GridStage.build(s)
    rng = np.random.default_rng([s.seed, 1])
    meter_ids = [f"m{i + 1:05d}" for i in range(len(grid.household_index))]
    meters = HomeMeterFleet(meter_ids, grid.household_bus, grid.demand.home_phase(),
                            _one_hz_homes(grid, s.meters.home_1hz), s.meters.interval,
                            np.random.default_rng([s.seed, 7]), initial_wh=rng.uniform(1e5, 5e7, len(meter_ids)),
                            blink_detectors=s.meters.blink_detectors)
    actuators = (switch_actuators(grid) + battery_actuators(grid) + flexible_load_actuators(grid, meter_ids)
                 + transformer_actuators(grid))
    return SubstationUnit(index, substation_prefix(index, count), s, grid, meters, actuators,
                          _reading_path(s, len(meters.sampled)), UtilityMeterStage(s),
                          _substation_meters(grid, s.meters.interval, s.seed), KpiRecorder(s.clock.step),
                          RunRecorder(grid.bus_names, grid.line_names, grid.trafo_names))


def _one_hz_homes(grid: GridStage, count: int | None) -> np.ndarray:
    """Which homes carry a 1 Hz disaggregation meter: the grid's own (a ``sampling_s`` of 1) or the first N."""
    n = len(grid.household_index)
    if count is not None:
        return np.arange(n) < count
    if "sampling_s" in grid.net.load.columns:
        return (grid.net.load.sampling_s.to_numpy(dtype=float)[grid.household_index] == 1.0)
    return np.zeros(n, dtype=bool)


def _substation_meters(grid: GridStage, interval_s: float, seed: int) -> SubstationMeterBank:
    """A grid meter on each transformer's LV side (the pilots' substation meters, accuracy class C)."""
    ids = [f"ss{i}" for i in range(len(grid.net.trafo))]
    rng = np.random.default_rng([seed, 6])
    return SubstationMeterBank(ids, interval_s, rng, initial_import_wh=rng.uniform(1e7, 1e9, len(ids)))


def _reading_path(s: Scenario, n_meters: int) -> ReadingPath:
    link_cfg = s.meters.link
    link = build_link(link_cfg.technology, n_meters, link_cfg.gateways, link_cfg.profile,
                      np.random.default_rng([s.seed, 2]))
    if link is None:
        return ReadingPath(None)
    link = DegradableLink(link, np.random.default_rng([s.seed, 8]))
    gateway = Gateway(link, link_cfg.buffer_readings, buffering=link_cfg.buffering,
                      bytes_per_reading=link_cfg.bytes_per_reading, rng=np.random.default_rng([s.seed, 3]))
    return ReadingPath(gateway, link_cfg.bytes_per_reading)
