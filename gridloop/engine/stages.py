"""The simulator's stages as the engine sees them: the grid with its demand, and its actuators."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridloop.controllers.simulator_controller import Actuator
from gridloop.grid_models.base import GridSolver, GridState
from gridloop.grid_models.networks import load_network
from gridloop.grid_models.solvers import make_solver
from gridloop.profiles.simbench_household import SimbenchHouseholds
from gridloop.scenario.model import Scenario


@dataclass
class GridStage:
    """A network, the demand that drives it, and the solver that advances it step by step."""

    net: object
    solver: GridSolver
    demand: SimbenchHouseholds
    backend: str
    bus_names: list[str]
    line_names: list[str]
    trafo_names: list[str]

    @classmethod
    def build(cls, s: Scenario) -> GridStage:
        net = load_network(s.grid.network)
        if "profile" not in net.load.columns:
            raise ValueError(f"grid.network {s.grid.network!r} has no SimBench load profiles; "
                             "households.source 'simbench' needs a SimBench grid")
        demand = SimbenchHouseholds.from_net(
            net, s.clock.start, s.clock.step, s.seed, s.households.count, s.households.annual_kwh,
            s.households.scale_spread,
        )
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
