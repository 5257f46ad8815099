"""One substation of a scenario, the unit partitions split: its stages, built from the scenario's sections.

``grid.substations: S`` makes a scenario S independent copies of its network. Each copy is built from the
scenario's seed and its own number only, and its devices are namespaced ``s001-``, ``s002-``, ... on the
platform, so partition K/N (the substations i with i % N == K) publishes the same readings whatever N is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from gridloop.contract.summary import LinkedMeters, LinkSection
from gridloop.controllers.actuators import CommandStage, grid_actuators
from gridloop.controllers.scenario_events import CommandSender, ScenarioEventsStage
from gridloop.controllers.simulator_controller import Actuator, SimulatorController
from gridloop.grid_models.grid_stage import GridStage
from gridloop.profiles.demand import PRESETS, build_demand
from gridloop.profiles.utility_demand import UtilityMeterStage
from gridloop.results.kpis import KpiRecorder
from gridloop.results.recorder import RecordStage, RunRecorder
from gridloop.scenario.model import EquipmentOutageEvent, FaultEvent, Scenario
from gridloop.scenario.overrides import RunRefused
from gridloop.stage import Stage, ms
from gridloop.virtual_meters.dia import DeviceIntegrationAdapter
from gridloop.virtual_meters.electricity import MeterSample
from gridloop.virtual_meters.home_meters import HomeMeterFleet
from gridloop.virtual_meters.link_summary import LinkClass
from gridloop.virtual_meters.meter_events import MeterEventsStage
from gridloop.virtual_meters.meter_links import LinkedMeterStage, linked, meter_route
from gridloop.virtual_meters.meter_stages import (
    HomeMeterStage,
    SubstationMeterStage,
    build_home_meters,
    build_reading_path,
    build_substation_meters,
)
from gridloop.virtual_meters.meter_types.substation import SubstationMeterBank
from gridloop.virtual_meters.publish_stage import PublishStage
from gridloop.virtual_meters.reading_path import ReadingPath

if TYPE_CHECKING:
    from gridloop.grid_models.coupling.lv_solver import CouplingSlot


@dataclass
class SubstationUnit:
    """Everything of one substation that steps on the shared clock, before it is wired to MQTT."""

    index: int
    prefix: str  # device-id namespace on the platform: "" for a one-substation scenario, else "s001-", ...
    s: Scenario  # the scenario as this substation sees it (its own seed)
    grid: GridStage
    meters: HomeMeterFleet
    actuators: list[Actuator]
    path: ReadingPath
    path_1hz: ReadingPath  # the 1 Hz meters' own link and gateways
    utilities: UtilityMeterStage
    substation: SubstationMeterBank
    kpi: KpiRecorder
    recorder: RunRecorder
    # made by pipeline(), read by the summary
    events: ScenarioEventsStage = field(init=False)
    meter_events: MeterEventsStage = field(init=False)
    meter_stage: HomeMeterStage = field(init=False)
    publisher: PublishStage = field(init=False)
    event_publisher: PublishStage = field(init=False)
    linked: list[LinkedMeterStage] = field(init=False, default_factory=list)
    link_classes: list[LinkClass] = field(init=False, default_factory=list)

    @property
    def name(self) -> str:
        return self.prefix.rstrip("-") or "substation-1"

    @property
    def meter_count(self) -> int:
        return len(self.meters) + self.utilities.count + len(self.substation) + len(self.meters.blink_homes)

    def pipeline(self, dia: DeviceIntegrationAdapter, controller: SimulatorController, api: CommandSender,
                 owned: set[str] | None, lead: bool, broker=None) -> list[Stage]:
        """The substation's stages in the order of a step; ``lead``: this partition sends and answers."""
        s, period = self.s, ms(self.s.clock.step)
        self.events = ScenarioEventsStage(s.events, self.grid, self.meters, self.path, api,
                                          lambda: controller.arrivals, period, send_commands=lead, broker=broker,
                                          device_prefix=self.prefix)
        self.meter_events = MeterEventsStage(self.meters, period, enabled=s.meters.events)
        self.meter_stage = HomeMeterStage(self.meters, self.path, period, path_1hz=self.path_1hz)
        self.publisher = PublishStage(dia, self.recorder, owned, period)
        self.event_publisher = PublishStage(dia, self.recorder, owned, period, events=True)
        meter_stages = self._meter_stages(period)
        self.linked = [st for st in meter_stages if isinstance(st, LinkedMeterStage)]
        return [self.events, CommandStage(controller, period, every_step=lead), self.grid, self.meter_events,
                self.event_publisher, *meter_stages, self.publisher,
                RecordStage(self.recorder, self.kpi if len(self.substation) else None, s.kpis.transformer, period)]


    def _meter_stages(self, period: int) -> list[Stage]:
        """The home, transformer and utility meter stages, each meter class on its own link (streams 2-6)."""
        m, seed = self.s.meters, self.s.seed
        home_gateway = LinkSection.HOME_1HZ if m.link_1hz is not None else LinkSection.HOME
        routed = [(LinkedMeters.BLINK_DETECTOR, home_gateway, m.link_1hz or m.link, self.meters.blink.ids),
                  (LinkedMeters.SUBSTATION, LinkSection.SUBSTATION, m.substation_link, self.substation.ids),
                  *((LinkedMeters(kind), LinkSection.UTILITY, m.utility.link, ids)
                    for kind, ids in self.utilities.ids.items())]
        routes = [meter_route(ids, link, seed, 2 + k) for k, (_, _, link, ids) in enumerate(routed)]
        self.link_classes = [
            LinkClass(LinkedMeters.HOME_INTERVAL, LinkSection.HOME, m.link, self.path, len(self.meters.sampled)),
            LinkClass(LinkedMeters.HOME_1HZ, home_gateway, m.link_1hz or m.link, self.path_1hz,
                      int(self.meters.one_hz.sum())),
            *(LinkClass(kind, section, link, None if r is None else r.path, len(ids))
              for (kind, section, link, ids), r in zip(routed, routes, strict=True))]
        substation = SubstationMeterStage(self.substation, period)
        return [linked(self.meter_stage, routes[:1]), linked(substation, routes[1:2]),
                linked(self.utilities, routes[2:])]

    def paths(self) -> list[ReadingPath]:
        """Every reading path of the substation's meters, the ideal ones included (they count nothing)."""
        return [self.path, self.path_1hz, *(p for stage in self.linked for p in stage.paths)]

    def drain(self, end_ms: int, period_ms: int) -> list[MeterSample]:
        """What the gateways still hold after the last step, forwarded."""
        return [*self.meter_stage.drain(end_ms, period_ms),
                *(sample for stage in self.linked for sample in stage.drain(end_ms, period_ms))]


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
        raise RunRefused(f"{parts} partitions for {count} substations: a partition runs whole substations, "
                         "so use at most grid.substations partitions")
    return [i for i in range(count) if i % parts == part]


def _coupled_solver(slot: CouplingSlot):
    from gridloop.grid_models.coupling.lv_solver import CoupledLvSolver  # helics only where coupling is asked

    return lambda net: CoupledLvSolver(net, slot)


def build_unit(s: Scenario, index: int, coupling: CouplingSlot | None = None) -> SubstationUnit:
    """Substation ``index`` of the scenario; ``coupling``: its grid stage is this partition's LV federate."""
    count = s.grid.copies
    if count > 1:
        s = s.model_copy(deep=True)
        s.seed = substation_seed(s.seed, index, count)
        s.events = [e for e in s.events if e.substation == index + 1]  # each event names its substation
    period, seed = ms(s.clock.step), s.seed
    outages = [(e.outage.element, e.outage.index) for e in s.events if isinstance(e, EquipmentOutageEvent)]
    faults = any(isinstance(e, FaultEvent) for e in s.events)  # protection works on a pandapower net
    grid = GridStage.build(s.grid, lambda net: build_demand(net, s.households, s.clock.start, period, seed),
                           outages, period, seed, net_cache=not faults and coupling is None,
                           solver_of=None if coupling is None else _coupled_solver(coupling))
    meters = build_home_meters(s.meters, grid, seed)
    return SubstationUnit(index, substation_prefix(index, count), s, grid, meters, grid_actuators(grid, meters.ids),
                          build_reading_path(s.meters.link, len(meters.sampled), seed),
                          build_reading_path(s.meters.link_1hz or s.meters.link, int(meters.one_hz.sum()), seed,
                                             stream=1),
                          UtilityMeterStage(s.meters.utility, seed, s.clock.start, period,
                                            household=PRESETS[s.households.preset]),
                          build_substation_meters(grid, s.meters.interval, seed), KpiRecorder(s.clock.step),
                          RunRecorder(grid.bus_names, grid.line_names, grid.trafo_names))
