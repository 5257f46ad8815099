"""One simulation step, in the order the loop fixes: scenario events, commands, demand and solve, meters, recording.

    t: scenario events due (commands via REST, faults, link outages)
       controller.apply_pending()          commands that arrived since the last step
       grid.solve(t)                       demand, batteries, power flow; faulted lines re-trip
       power-quality events (every step)   sags, outages, last gasps, restorations
       meters.sample(t) if due → link/gateway → DIA; registers integrate over [t, t + step)
       substation and utility meters; KPI and grid recording
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gridloop.controllers.simulator_controller import SimulatorController
from gridloop.engine.faults import FaultInjector
from gridloop.engine.kpis import KpiRecorder
from gridloop.engine.platform_client import PlatformClient
from gridloop.engine.recorder import RunRecorder
from gridloop.engine.stages import GridStage
from gridloop.engine.utility_stage import UtilityMeterStage
from gridloop.mqtt_client import wait_for
from gridloop.scenario.model import (
    BrokerOutageEvent,
    CommandEvent,
    EquipmentOutageEvent,
    FaultEvent,
    LinkDegradationEvent,
    LinkOutageEvent,
    MeterFaultEvent,
    Scenario,
)
from gridloop.virtual_meters.dia import DeviceIntegrationAdapter
from gridloop.virtual_meters.home_meters import HomeMeterFleet
from gridloop.virtual_meters.meter_types.substation import SubstationMeterBank
from gridloop.virtual_meters.power_quality import PQState, detect, to_contract_events
from gridloop.virtual_meters.reading_path import ReadingPath

SAG_PU = 0.9


@dataclass
class StepCounters:
    sampled: int = 0
    events: dict[str, int] = field(default_factory=dict)
    outage_meter_steps: int = 0  # meters without supply, summed over steps (customer-minutes × step/60)
    meters_dead_after_fault: int = -1  # meters without supply in the step a fault struck


class StepLoop:
    """Owns the per-step order of the stages; the engine only calls ``step(t)`` on its clock."""

    def __init__(self, s: Scenario, grid: GridStage, meters: HomeMeterFleet, path: ReadingPath,
                 utilities: UtilityMeterStage, substation: SubstationMeterBank, dia: DeviceIntegrationAdapter,
                 controller: SimulatorController, api: PlatformClient, recorder: RunRecorder,
                 kpi: KpiRecorder, owned: set[str] | None = None, send_commands: bool = True,
                 broker=None) -> None:
        """``owned``: the meters this partition publishes (all when None); every partition simulates everything."""
        self.s, self.grid, self.meters, self.path = s, grid, meters, path
        self.utilities, self.substation, self.dia, self.controller = utilities, substation, dia, controller
        self.api, self.recorder, self.kpi = api, recorder, kpi
        self.faults = FaultInjector(grid)
        self.owned = owned
        self.send_commands = send_commands
        self._command_due = False
        self._scenario_commands = 0
        self._arrivals_before = controller.arrivals
        self.broker = broker  # the embedded broker, for broker outages
        self._later: list[tuple[float, str, object]] = []  # (when, what, detail): restorations due
        self.injected: list[dict] = []  # ground truth of every disturbance, for the summary
        self.counters = StepCounters()
        self.start = pd.Timestamp(s.clock.start).tz_convert("UTC")
        self.start_ms = int(self.start.value // 1_000_000)
        self._pending = sorted(s.events, key=lambda e: e.at)
        self._link_up_at: list[float] = []
        self._pq = PQState.initial(len(meters), 3)
        self.log: list[str] = []  # the order of what happened, for tests that pin it

    def ts_ms(self, t: float) -> int:
        return self.start_ms + int(round(t * 1000))

    def step(self, t: float) -> None:
        s, grid, step_s = self.s, self.grid, self.s.clock.step
        grid.now_s = t
        sags: list[dict] = []
        self._restore_links(t)
        self._restore_due(t)
        while self._pending and self._pending[0].at <= t:
            sags += self._scenario_event(t, self._pending.pop(0))
        if self.send_commands or self._command_due:
            # a follower partition applies commands only at the scenario's command steps, so that its grid
            # changes at exactly the step the lead's does, however early the command reached it
            self.controller.apply_pending(t)
        self._command_due = False
        state = grid.solve(t)
        if self.faults.faults and self.faults.retrip(t, state.bus_energized):
            state = grid.solve_again()
        if sags or (self.faults.faults and self.counters.meters_dead_after_fault < 0):
            self.counters.meters_dead_after_fault = int((~state.bus_energized[self.meters.bus_index]).sum())
        v3 = grid.bus_v_phase(state)[self.meters.bus_index]  # every home's phase voltages, once per step
        self._power_quality(t, v3, state, sags)
        p_w = state.load_p_mw[grid.household_index] * 1e6
        sample = None
        if self.meters.due(t):
            p3, q3 = grid.served_home_phase_power(state)
            sample = self.meters.sample(self.ts_ms(t), v3, p3, q3)
            self._record(sample)
            pulses = self.meters.blink_sample(self.ts_ms(t))
            if pulses is not None:  # blink detectors report over the home gateway
                self._publish(pulses)
                self._record(pulses)
        for second in self.meters.sample_1hz(self.ts_ms(t), int(step_s), v3, p_w):
            self._publish(second)  # home gateway over 3G/4G, straight to the platform
            self._record(second)
        for delivered in self.path.step(t, step_s, sample):
            self._publish(delivered)
        self.meters.integrate(p_w, step_s, self.ts_ms(t))
        self.counters.outage_meter_steps += int((~state.bus_energized[self.meters.bus_index]).sum())
        if state.trafo_p_mw is not None and len(self.substation):
            trafo_w = state.trafo_p_mw * 1e6
            p3 = np.repeat(trafo_w[:, None] / 3, 3, axis=1)  # balanced solve: a third on each phase
            q3 = np.repeat(state.trafo_q_mvar[:, None] * 1e6 / 3, 3, axis=1)
            if self.substation.due(t):
                v3 = np.repeat(grid.bus_v_ll(state)[grid.trafo_lv_bus][:, None] / np.sqrt(3.0), 3, axis=1)
                ss = self.substation.sample(self.ts_ms(t), v3, p3, q3, frequency_hz=50.0)
                self.dia.publish(ss)
                self._record(ss)
            self.substation.integrate(p3, q3, step_s)
            self.kpi.record(self.start + pd.Timedelta(seconds=t), float(trafo_w[s.kpis.transformer]) / 1000,
                            grid.curtailed_kw(), grid.battery_kw())
        for utility in self.utilities.step(t, step_s, self.ts_ms(t)):
            self.dia.publish(utility)  # GPRS / wM-Bus head-ends: no lossy link modelled here
            self._record(utility)
        self.recorder.record_step(self.start + pd.Timedelta(seconds=t), state)

    def drain(self, t_end: float, limit_s: float = 3600.0) -> None:
        """After the last step the gateways go on forwarding what they hold, for up to limit_s."""
        t = t_end
        while self.path.buffered and t < t_end + limit_s:
            for delivered in self.path.step(t, self.s.clock.step, None):
                self._publish(delivered)
            t += self.s.clock.step

    def _publish(self, sample) -> None:
        self.dia.publish(self._mine(sample))

    def _mine(self, sample):
        """The part of a sample this partition publishes (identical in every partition, so N does not matter)."""
        if self.owned is None:
            return sample
        keep = np.array([d in self.owned for d in sample.devices], dtype=bool)
        return sample if keep.all() else sample.subset(np.flatnonzero(keep))

    def _record(self, sample) -> None:
        mine = self._mine(sample)
        self.recorder.record_sample(mine)
        self.counters.sampled += len(mine.devices)

    def _scenario_event(self, t: float, event) -> list[dict]:
        if isinstance(event, CommandEvent):
            self.log.append(f"{t:g} command {event.command} {event.device}")
            self._scenario_commands += 1
            if self.send_commands:  # the lead partition sends; every partition's controller applies it
                self.api.send_command(event.device, event.command, dict(event.args))
            # it goes through the platform like anyone's; wait until it is here (it may be already), so that it
            # lands on this very step in every partition
            wait_for(lambda: self.controller.arrivals >= self._arrivals_before + self._scenario_commands,
                     timeout_s=120)
            self._command_due = True
            return []
        if isinstance(event, FaultEvent):
            self.log.append(f"{t:g} fault line {event.fault.line}")
            fault, vm_during = self.faults.strike(t, event.fault)
            return self._sag_events(t, vm_during, fault.clearing_time_s)
        if isinstance(event, LinkOutageEvent) and self.path.gateway is not None:
            self.log.append(f"{t:g} link outage {event.link_outage.duration:g} s")
            self.path.gateway.link.set_down(True)
            self._link_up_at.append(t + event.link_outage.duration)
            self.injected.append({"at_s": t, "kind": "link_outage", "duration_s": event.link_outage.duration})
        elif isinstance(event, LinkDegradationEvent) and self.path.gateway is not None:
            d = event.link_degradation
            self.log.append(f"{t:g} link degradation {d.extra_loss:g}")
            self.path.gateway.link.extra_loss = d.extra_loss
            self._later.append((t + d.duration, "link_healed", None))
            self.injected.append({"at_s": t, "kind": "link_degradation", "extra_loss": d.extra_loss,
                                  "duration_s": d.duration})
        elif isinstance(event, EquipmentOutageEvent):
            o = event.outage
            switch = self.grid.outage_switches[(o.element, o.index)]
            self.log.append(f"{t:g} outage {o.element} {o.index}")
            self.grid.set_switch(switch, False)
            self._later.append((t + o.duration, "equipment_back", switch))
            self.injected.append({"at_s": t, "kind": "equipment_outage", "element": o.element, "index": o.index,
                                  "duration_s": o.duration})
        elif isinstance(event, BrokerOutageEvent):
            self.log.append(f"{t:g} broker outage {event.broker_outage.duration:g} s")
            if self.broker is None:
                raise ValueError("events: broker_outage needs the embedded broker (no --broker)")
            self.broker.stop()
            self._later.append((t + event.broker_outage.duration, "broker_back", None))
            self.injected.append({"at_s": t, "kind": "broker_outage", "duration_s": event.broker_outage.duration})
        elif isinstance(event, MeterFaultEvent):
            f = event.meter_fault
            self.log.append(f"{t:g} meter fault {f.meter} {f.kind}")
            self.meters.fault(f.meter, f.kind, self.ts_ms(t), f.drift_ppm)
            self.injected.append({"at_s": t, "kind": f.kind, "meter": f.meter,
                                  **({"drift_ppm": f.drift_ppm} if f.kind == "clock_drift" else {})})
        return []

    def _restore_due(self, t: float) -> None:
        due = [x for x in self._later if x[0] <= t]
        self._later = [x for x in self._later if x[0] > t]
        for _, what, detail in due:
            if what == "equipment_back":
                self.grid.set_switch(detail, True)
            elif what == "link_healed":
                self.path.gateway.link.extra_loss = 0.0
            elif what == "broker_back":
                self.broker.start()

    def _restore_links(self, t: float) -> None:
        if self._link_up_at and min(self._link_up_at) <= t and self.path.gateway is not None:
            self._link_up_at = [u for u in self._link_up_at if u > t]
            if not self._link_up_at:
                self.path.gateway.link.set_down(False)

    def _sag_events(self, t: float, vm_during: np.ndarray, duration_s: float) -> list[dict]:
        """Meters record the dip while the fault lasted (event-driven, not at their sampling instants)."""
        vm = vm_during[self.meters.bus_index]
        out = []
        for i in np.flatnonzero(vm < SAG_PU):
            out.append({"dev": self.meters.ids[i], "ts": self.ts_ms(t), "type": "voltage_sag",
                        "severity": "major" if vm[i] < 0.7 else "minor",
                        "data": {"voltage_v": round(float(vm[i]) * 230.0, 1), "un_v": 230.0,
                                 "duration_ms": round(float(min(duration_s, 60.0)) * 1000)}})
        return out

    def _power_quality(self, t: float, v3: np.ndarray, state, extra: list[dict]) -> None:
        if not self.s.meters.events:
            return
        v = np.round(v3, 1)
        single = self.meters.phase >= 0  # a single-phase meter sees only its own phase
        v[single] = np.where(np.eye(3, dtype=bool)[self.meters.phase[single]], v[single], np.nan)
        found, self._pq = detect(v, self._pq, 230.0, state.bus_energized[self.meters.bus_index])
        events = extra + to_contract_events(found, self.ts_ms(t), self.meters.ids)
        if self.owned is not None:
            events = [e for e in events if e["dev"] in self.owned]
        for e in events:
            self.counters.events[e["type"]] = self.counters.events.get(e["type"], 0) + 1
        self.dia.publish_events(events)
