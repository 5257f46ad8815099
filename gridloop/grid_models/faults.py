"""Line faults during a run: protection clears them, meters see the dip, a faulted line trips again if re-energised.

Ground truth (where, when, which device cleared it) is kept for the summary and the KPIs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from gridloop.scenario.model import LineFault

if TYPE_CHECKING:
    from gridloop.grid_models.grid_stage import GridStage


@dataclass(frozen=True)
class FaultDip:
    """A fault that struck at this step, as the meters saw it: bus voltages (pu, net.bus order) while it
    lasted, and how long that was."""

    vm_pu: np.ndarray
    duration_s: float


@dataclass(frozen=True)
class FaultsStruck:
    """The faults that struck at this step (none most steps)."""

    dips: tuple[FaultDip, ...] = ()


@dataclass
class ActiveFault:
    """A fault that happened and is not repaired (it stays until the end of the run)."""

    at_s: float
    spec: LineFault
    clearing_switch: int
    clearing_time_s: float
    current_ka: float
    deenergised_buses: list[int]
    trips: int = 1
    history: list[dict] = field(default_factory=list)


class FaultInjector:
    """Applies scenario line faults to the grid stage and keeps the faulted lines faulted."""

    def __init__(self, grid: GridStage) -> None:
        self.grid = grid
        self.faults: list[ActiveFault] = []

    def strike(self, t_s: float, spec: LineFault) -> tuple[ActiveFault, np.ndarray]:
        """The fault happens now: returns it and the bus voltages (pu, net.bus order) while it lasted."""
        from gridloop.grid_models.protection import simulate_line_fault  # pandapower's short circuit

        p, q = self.grid.last_loads()
        outcome = simulate_line_fault(self.grid.pandapower_net(), spec.line, spec.position, r_fault_ohm=spec.r_ohm,
                                      fault=spec.kind, load_p_mw=p, load_q_mvar=q)
        if outcome.clearing_switch >= 0:
            self.grid.set_switch(outcome.clearing_switch, False)
        fault = ActiveFault(t_s, spec, outcome.clearing_switch, outcome.clearing_time_s,
                            outcome.fault_current_ka, [int(b) for b in outcome.deenergised_buses])
        self.faults.append(fault)
        return fault, outcome.bus_vm_pu_during

    def retrip(self, t_s: float, energized: np.ndarray) -> list[ActiveFault]:
        """Protection opens again wherever a faulted line is back under voltage (reclosed onto the fault)."""
        tripped = []
        net = self.grid.net
        bus_pos = {b: i for i, b in enumerate(net.bus.index)}
        for fault in self.faults:
            line = fault.spec.line
            on_line = net.switch[(net.switch.et == "l") & (net.switch.element == line)]
            if len(on_line) and not on_line.closed.all():
                continue  # isolated: one of its own switches is open
            ends = [bus_pos[int(net.line.from_bus.at[line])], bus_pos[int(net.line.to_bus.at[line])]]
            if energized[ends].any() and fault.clearing_switch >= 0:
                self.grid.set_switch(fault.clearing_switch, False)
                fault.trips += 1
                fault.history.append({"sim_time_s": t_s, "event": "retrip"})
                tripped.append(fault)
        return tripped

    def ground_truth(self) -> list[dict]:
        return [{"at_s": f.at_s, "line": f.spec.line, "position": f.spec.position, "kind": f.spec.kind,
                 "fault_current_ka": round(f.current_ka, 4), "clearing_switch": f.clearing_switch,
                 "clearing_device": f"sw{f.clearing_switch}" if f.clearing_switch >= 0 else None,
                 "clearing_time_s": round(f.clearing_time_s, 4), "deenergised_buses": f.deenergised_buses,
                 "trips": f.trips} for f in self.faults]
