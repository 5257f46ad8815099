"""The meters' events each step: EN 50160 voltage events, outages, last gasps, and the dips of faults.

A fault's dip lasts less than a step, so meters record it when it happens (event-driven), not at their
sampling instants; everything else is edge-detected on the step's voltages by :mod:`power_quality`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridloop.contract import EventType, Severity
from gridloop.grid_models.faults import FaultsStruck
from gridloop.grid_models.grid_stage import GridOutput
from gridloop.stage import Clock, Outputs
from gridloop.virtual_meters.home_meters import HomeMeterFleet
from gridloop.virtual_meters.power_quality import DEEP_SAG_LIMIT, SAG_LIMIT, PQState, detect, to_contract_events

UN_V = 230.0  # the home meters' nominal phase voltage
MAX_DIP_S = 60.0  # a dip is reported as lasting at most this long


@dataclass(frozen=True)
class MeterEvents:
    """The contract events the home meters raised at this step."""

    events: list[dict]


@dataclass
class SupplyCounters:
    outage_meter_steps: int = 0  # meters without supply, summed over steps (customer-minutes × step/60)
    meters_dead_after_fault: int = -1  # meters without supply in the step a fault struck


def dip_events(meter_ids: list[str], vm_pu: np.ndarray, unix_ms: int, duration_s: float) -> list[dict]:
    """A ``voltage_sag`` of every meter whose voltage (pu, per meter) fell below the sag limit during a dip."""
    out = []
    for i in np.flatnonzero(vm_pu < SAG_LIMIT):
        out.append({"dev": meter_ids[i], "ts": unix_ms, "type": EventType.VOLTAGE_SAG,
                    "severity": Severity.MAJOR if vm_pu[i] < DEEP_SAG_LIMIT else Severity.MINOR,
                    "data": {"voltage_v": round(float(vm_pu[i]) * UN_V, 1), "un_v": UN_V,
                             "duration_ms": round(float(min(duration_s, MAX_DIP_S)) * 1000)}})
    return out


class MeterEventsStage:
    """Home meters' events from the step's grid voltages and supply; counts the meters without supply."""

    def __init__(self, meters: HomeMeterFleet, period_ms: int, enabled: bool = True, offset_ms: int = 0) -> None:
        self.meters, self.period_ms, self.offset_ms, self.enabled = meters, period_ms, offset_ms, enabled
        self.counters = SupplyCounters()
        self._pq = PQState.initial(len(meters), 3)
        # a single-phase meter sees only its own phase: NaN on the others, 1 where it measures
        single = meters.phase >= 0
        self._seen = np.ones((len(meters), 3))
        self._seen[single] = np.where(np.eye(3, dtype=bool)[meters.phase[single]], 1.0, np.nan)

    def step(self, clock: Clock, inputs: Outputs) -> MeterEvents | None:
        grid = inputs.get(GridOutput)
        struck = inputs.current(FaultsStruck)
        bus = self.meters.bus_index
        energized = grid.state.bus_energized[bus]
        dead = len(energized) - int(np.count_nonzero(energized))
        sags = [e for dip in (struck.dips if struck else ()) for e in
                dip_events(self.meters.ids, dip.vm_pu[bus], clock.unix_ms, dip.duration_s)]
        if sags or (grid.faulted and self.counters.meters_dead_after_fault < 0):
            self.counters.meters_dead_after_fault = dead
        self.counters.outage_meter_steps += dead
        if not self.enabled:
            return None
        v = np.round(grid.bus_v_phase[bus], 1)
        v *= self._seen
        found, self._pq = detect(v, self._pq, UN_V, energized)
        return MeterEvents(sags + to_contract_events(found, clock.unix_ms, self.meters.ids, UN_V))
