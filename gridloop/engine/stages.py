"""The simulator's stages as the engine sees them: the grid with its demand, and its actuators."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gridloop.controllers.simulator_controller import Actuator
from gridloop.grid_models.base import GridSolver, GridState
from gridloop.grid_models.networks import load_network
from gridloop.grid_models.solvers import make_solver
from gridloop.engine.demand import Demand, SimbenchDemand, SyntheticDemand
from gridloop.profiles import ITALIAN_FAMILY, SWEDISH_APARTMENT, HouseholdParams
from gridloop.scenario.model import Households, Scenario

PRESETS = {"default": HouseholdParams(), "italian_family": ITALIAN_FAMILY, "swedish_apartment": SWEDISH_APARTMENT}


def build_demand(net, s: Scenario) -> Demand:
    """The scenario's demand source on this net."""
    h: Households = s.households
    if h.source == "simbench":
        return SimbenchDemand(net, s.clock.start, s.clock.step, s.seed, h.count, h.annual_kwh or 3000.0,
                              h.scale_spread)
    params = PRESETS[h.preset]
    changes: dict = {"pv_share": h.pv_share, "ev_share": h.ev_share}
    if h.annual_kwh is not None:
        changes["annual_kwh"] = h.annual_kwh
    if h.three_phase_share is not None:
        changes["three_phase_share"] = h.three_phase_share
    return SyntheticDemand(net, s.clock.start, s.clock.step, s.seed, replace(params, **changes), h.count)


@dataclass
class GridStage:
    """A network, the demand that drives it, and the solver that advances it step by step."""

    net: object
    solver: GridSolver
    demand: Demand
    backend: str
    bus_names: list[str]
    line_names: list[str]
    trafo_names: list[str]

    @classmethod
    def build(cls, s: Scenario) -> GridStage:
        net = load_network(s.grid.network)
        demand = build_demand(net, s)
        solver = make_solver(net, s.grid.backend, per_phase=False)
        names = [str(n) if str(n) not in ("", "None", "nan") else f"bus{i}" for i, n in zip(net.bus.index, net.bus.name,
                                                                                          strict=True)]
        return cls(net, solver, demand, s.grid.backend, names, [str(n) for n in net.line.name],
                   [str(n) for n in net.trafo.name])

    @property
    def household_index(self) -> np.ndarray:
        return self.demand.load_index

    @property
    def household_bus(self) -> np.ndarray:
        """Bus position (in net.bus order) of every household load."""
        bus_pos = {b: i for i, b in enumerate(self.net.bus.index)}
        return np.array([bus_pos[b] for b in self.net.load.bus.to_numpy()[self.demand.load_index]])

    def solve(self, t_s: float) -> GridState:
        p, q = self.demand.at(t_s)
        self.solver.set_loads(p, q)
        return self.solver.solve()

    def bus_v_ll(self, state: GridState) -> np.ndarray:
        """Line-to-line voltage per bus in volts (0 where de-energised)."""
        return state.bus_vm_pu * self.solver.bus_vn_kv * 1000.0


def switch_actuators(grid: GridStage) -> list[Actuator]:
    """Every switch of the network as a commandable device ``sw<index>``."""
    actuators = []
    for idx in grid.net.switch.index:
        def make(closed: bool, i: int = int(idx)):
            def act(args: dict) -> str:
                grid.solver.set_switch(i, closed)
                return f"switch {i} {'closed' if closed else 'opened'}"
            return act
        actuators.append(Actuator(f"sw{int(idx)}", "switch",
                                  {"switch.open": make(False), "switch.close": make(True)}))
    return actuators
