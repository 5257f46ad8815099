"""The grid stage: a network, the demand that drives it, and the solver that advances it step by step.

Each step it applies the curtailments commands started, advances demand and batteries, solves the power
flow and, where a faulted line came back under voltage, lets protection trip it again and solves anew.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import numpy as np

from gridloop.grid_models.base import GridSolver, GridState
from gridloop.grid_models.faults import FaultInjector
from gridloop.grid_models.loop_impedance import BusImpedance, bus_impedance
from gridloop.grid_models.net_cache import as_pandapower, load_grid_network
from gridloop.grid_models.solvers import make_solver
from gridloop.grid_models.storage import BatteryFleet
from gridloop.grid_models.taps import TapController
from gridloop.grid_models.zero_sequence import add_zero_sequence_defaults
from gridloop.scenario.model import Battery, Grid
from gridloop.stage import Clock, Outputs


class Demand(Protocol):
    """Power of every load of the net, step by step, with the metered homes among them."""

    load_index: np.ndarray  # positions in net.load of the metered homes

    def at(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(p_mw, q_mvar) of every load over the step starting at t_s (called once per step, in order)."""

    def curtail(self, homes: np.ndarray, limit_w: float) -> None:
        """Cap the curtailable load of the homes (positions in load_index) at limit_w."""

    def release(self, homes: np.ndarray) -> None:
        """Lift the cap of the homes."""

    def energy_not_served_wh(self) -> np.ndarray:
        """Energy cut by curtailment so far, per home."""

    def generation_at(self, t_s: float) -> np.ndarray | None:
        """Feed-in (MW) of the grid's static generators at t_s, or None to keep their set values."""

    def held_back_w(self) -> float:
        """Load held back by demand response in the last step, W (negative while it rebounds)."""

    def home_phase(self) -> np.ndarray:
        """Per home: -1 if connected three-phase, else its phase 0/1/2."""

    def home_phase_power(self) -> tuple[np.ndarray, np.ndarray]:
        """Per home, the last step's P (W) and Q (var) on each phase, (n_homes, 3)."""

    def home_seconds(self, homes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Per second of the last step, the own demand P (W) and Q (var) of some homes (positions in
        load_index), (len(homes), step seconds); None where the source has nothing within a step."""


def _declare_ratio_tap_changers(net) -> None:
    """Transformers with a tap range and step but no changer type (SimBench's) get on-load ratio changers, which
    pandapower and power-grid-model otherwise ignore; used only when ``grid.tap_control`` is set."""
    tr = net.trafo
    if tr.empty:
        return
    kind = tr.get("tap_changer_type", None)
    untyped = np.ones(len(tr), dtype=bool) if kind is None else kind.isna().to_numpy() | kind.astype(str).isin(
        ["None", "nan", ""]).to_numpy()
    ranged = (tr.tap_max.fillna(0) != tr.tap_min.fillna(0)).to_numpy() & (tr.tap_step_percent.fillna(0) != 0).to_numpy()
    net.trafo.loc[untyped & ranged, "tap_changer_type"] = "Ratio"


def unique_names(table, prefix: str) -> list[str]:
    """Element names for column headers: the net's name where it is set and unique, else prefix + index."""
    names = [str(n) for n in table.name]
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return [n if n not in ("", "None", "nan") and counts[n] == 1 else f"{prefix}{i}"
            for i, n in zip(table.index, names, strict=True)]


class GridOutput:
    """The solved state of one step, with the views the meters and recorders read (computed when asked)."""

    def __init__(self, grid: GridStage, state: GridState, faulted: bool) -> None:
        self.state = state
        self.faulted = faulted  # some line is faulted (struck now or earlier)
        self._grid = grid

    @cached_property
    def bus_v_phase(self) -> np.ndarray:
        """Phase-to-neutral voltage per bus and phase in volts, (n_bus, 3); 0 where de-energised."""
        return self._grid.bus_v_phase(self.state)

    @cached_property
    def home_p_w(self) -> np.ndarray:
        """Every metered home's active power in the step, W."""
        return self.state.load_p_mw[self._grid.household_index] * 1e6

    def served_home_phase_power(self) -> tuple[np.ndarray, np.ndarray]:
        return self._grid.served_home_phase_power(self.state)

    def home_seconds(self, homes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The step's own demand of some homes second by second (see ``Demand.home_seconds``)."""
        return self._grid.demand.home_seconds(homes)

    def home_energized(self, homes: np.ndarray) -> np.ndarray:
        """Whether each of some homes (positions in the household index) is supplied in this step."""
        return self.state.bus_energized[self._grid.household_bus[homes]]

    def home_loop_impedance(self, homes: np.ndarray, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """R, X (ohm) of some homes' loop back to their transformer (assumptions: ``loop_impedance``)."""
        return self._grid.bus_impedance.home_loop(self._grid.household_bus[homes], phase)

    def trafo_lv_v_phase(self) -> np.ndarray:
        """Phase-to-neutral voltage at each transformer's LV side, V."""
        return self._grid.bus_v_ll(self.state)[self._grid.trafo_lv_bus] / np.sqrt(3.0)

    def curtailed_kw(self) -> float:
        return self._grid.curtailed_kw()

    def battery_kw(self) -> float:
        return self._grid.battery_kw()


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
    batteries: BatteryFleet | None = None
    battery_ids: tuple[str, ...] = ()
    battery_setpoint_mw: np.ndarray | None = None
    curtailed_until_s: np.ndarray | None = None  # per home; inf while curtailed without end, nan when free
    period_ms: int = 60_000
    per_phase: bool = False
    outage_switches: dict | None = None  # (element, index) -> the switch that takes it out of service
    offset_ms: int = 0
    taps: TapController | None = None  # grid.tap_control: moves taps after each step's solve (next solve on)
    faults: FaultInjector = field(init=False)
    _curtail_for_s: np.ndarray = field(init=False)  # curtailments applied since the last step: their duration

    def __post_init__(self) -> None:
        self.faults = FaultInjector(self)
        self._curtail_for_s = np.full(len(self.demand.load_index), np.nan)

    @classmethod
    def build(cls, cfg: Grid, make_demand: Callable[[object], Demand], outages: Sequence[tuple[str, int]],
              period_ms: int, seed: int = 0, *, net_cache: bool = False,
              solver_of: Callable[[object], GridSolver] | None = None) -> GridStage:
        """The grid section's network (drawn from ``seed``) with its demand, batteries and outage switches.

        ``net_cache``: the caller needs nothing of pandapower beyond the build (no line faults): a balanced
        power-grid-model grid without batteries, outages or tap control then reads its network's tables from
        the network cache (``net_cache``) and imports no pandapower. ``solver_of(net)`` replaces the backend's
        solver (a coupled run's LV federate)."""
        if net_cache and runs_on_tables(cfg, outages):
            net = load_grid_network(cfg, seed)
        else:
            from gridloop.grid_models.networks import grid_network  # imports pandapower (~2 s)

            net = grid_network(cfg, seed)
        demand = make_demand(net)
        fleet = _add_batteries(net, cfg.batteries)
        outage_switches = _add_outage_switches(net, outages, cfg.network)
        if cfg.per_phase:
            add_zero_sequence_defaults(net)
        if cfg.tap_control is not None:
            _declare_ratio_tap_changers(net)
        solver = solver_of(net) if solver_of is not None else make_solver(net, cfg.backend, per_phase=cfg.per_phase)
        return cls(net, solver, demand, cfg.backend, unique_names(net.bus, "bus"), unique_names(net.line, "line"),
                   unique_names(net.trafo, "trafo"), fleet, tuple(b.id for b in cfg.batteries),
                   np.zeros(len(cfg.batteries)), np.full(len(demand.load_index), np.nan), period_ms,
                   per_phase=cfg.per_phase, outage_switches=outage_switches,
                   taps=None if cfg.tap_control is None else TapController.from_net(
                       net, v_set_pu=cfg.tap_control.v_set_pu, deadband_pu=cfg.tap_control.deadband_pu))

    def step(self, clock: Clock, inputs: Outputs) -> GridOutput:
        """Solve the step starting now; protection trips a faulted line again if it is back under voltage."""
        t_s = clock.now_s
        started = ~np.isnan(self._curtail_for_s)
        if started.any():  # a curtailment lasts from the step that applies it
            self.curtailed_until_s[started] = t_s + self._curtail_for_s[started]
            self._curtail_for_s[started] = np.nan
        state = self.solve(t_s)
        if self.faults.faults and self.faults.retrip(t_s, state.bus_energized):
            state = self.solve_again()
        if self.taps is not None:
            self.taps.step(state, self.solver)
        return GridOutput(self, state, bool(self.faults.faults))

    @property
    def household_index(self) -> np.ndarray:
        return self.demand.load_index

    @cached_property
    def household_bus(self) -> np.ndarray:
        """Bus position (in net.bus order) of every household load."""
        bus_pos = {b: i for i, b in enumerate(self.net.bus.index)}
        return np.array([bus_pos[b] for b in self.net.load.bus.to_numpy()[self.demand.load_index]])

    def curtail(self, home: int, limit_w: float, duration_s: float) -> None:
        """Cap a home's flexible load for duration_s from the next step on."""
        self.demand.curtail(np.array([home]), limit_w)
        self._curtail_for_s[home] = duration_s

    def release(self, home: int) -> None:
        self.demand.release(np.array([home]))
        self.curtailed_until_s[home] = np.nan
        self._curtail_for_s[home] = np.nan

    def solve(self, t_s: float) -> GridState:
        """Advance demand and batteries to the step starting at t_s and solve the power flow."""
        if self.curtailed_until_s is not None:
            ended = np.flatnonzero(self.curtailed_until_s <= t_s)
            if ended.size:
                self.demand.release(ended)
                self.curtailed_until_s[ended] = np.nan
        p, q = self.demand.at(t_s)
        if self.batteries is not None:  # battery loads were appended after the demand's loads
            extra = len(self.net.load) - p.shape[0]
            p, q = np.pad(p, (0, extra)), np.pad(q, (0, extra))
            self.batteries.step(self.battery_setpoint_mw, self.period_ms / 3_600_000)
            p = self.batteries.add_to_loads(p)
        self._last_loads = (p, q)
        if self.per_phase:  # every load a third per phase, homes as the demand model splits them
            p3, q3 = np.repeat(p[:, None] / 3, 3, axis=1), np.repeat(q[:, None] / 3, 3, axis=1)
            hp, hq = self.demand.home_phase_power()
            p3[self.household_index], q3[self.household_index] = hp * 1e-6, hq * 1e-6
            self.solver.set_loads_phase(p3, q3)
        else:
            self.solver.set_loads(p, q)
        feed_in = self.demand.generation_at(t_s)
        if feed_in is not None:  # PV follows the sun instead of its nameplate value
            self.solver.set_sgens(feed_in, np.zeros_like(feed_in))
        return self.solver.solve()

    def solve_again(self) -> GridState:
        """Re-solve the same step after a topology change (protection tripped within the step)."""
        return self.solver.solve()

    def last_loads(self) -> tuple[np.ndarray, np.ndarray]:
        """(p_mw, q_mvar) of every load in the last solve (the pre-fault state of a fault now)."""
        last = getattr(self, "_last_loads", None)
        if last is None:
            return self.net.load.p_mw.to_numpy(dtype=float), self.net.load.q_mvar.to_numpy(dtype=float)
        return last

    def pandapower_net(self) -> object:
        """The net as a pandapower net (one read from the network cache becomes one now: imports pandapower)."""
        self.net = as_pandapower(self.net)
        return self.net

    def set_switch(self, index: int, closed: bool) -> None:
        """Operate a switch in the solver and in the net (faults and topology read the net)."""
        self.solver.set_switch(index, closed)
        self.net.switch.at[index, "closed"] = closed

    def curtailed_kw(self) -> float:
        """Load demand response held back in the last step, kW (negative while deferred load rebounds)."""
        return self.demand.held_back_w() / 1000.0

    def battery_kw(self) -> float:
        """The batteries' power in the last step, kW (+ charging)."""
        return float(self.batteries.p_mw.sum() * 1000) if self.batteries is not None else 0.0

    @cached_property
    def bus_impedance(self) -> BusImpedance:
        """Each bus's path impedance to its transformer, from the net's normal switching state (built once)."""
        return bus_impedance(self.net)

    @cached_property
    def trafo_lv_bus(self) -> np.ndarray:
        """Bus position (net.bus order) of every transformer's LV side."""
        bus_pos = {b: i for i, b in enumerate(self.net.bus.index)}
        return np.array([bus_pos[b] for b in self.net.trafo.lv_bus.to_numpy()], dtype=np.int64)

    @cached_property
    def _v_phase_base(self) -> np.ndarray:
        """Nominal phase-to-neutral voltage per bus, V, as a column."""
        return (self.solver.bus_vn_kv * 1000.0 / np.sqrt(3.0))[:, None]

    def bus_v_phase(self, state: GridState) -> np.ndarray:
        """Phase-to-neutral voltage per bus and phase in volts, (n_bus, 3); 0 where de-energised."""
        if state.bus_vm_pu_phase is not None:
            return state.bus_vm_pu_phase * self._v_phase_base
        return np.repeat(state.bus_vm_pu[:, None] * self._v_phase_base, 3, axis=1)

    def served_home_phase_power(self, state: GridState) -> tuple[np.ndarray, np.ndarray]:
        """Per home and phase, the power it really drew (0 where its bus has no supply), W / var."""
        p3, q3 = self.demand.home_phase_power()
        on = state.bus_energized[self.household_bus][:, None]
        return np.where(on, p3, 0.0), np.where(on, q3, 0.0)

    def bus_v_ll(self, state: GridState) -> np.ndarray:
        """Line-to-line voltage per bus in volts (0 where de-energised)."""
        return state.bus_vm_pu * self.solver.bus_vn_kv * 1000.0


def runs_on_tables(cfg: Grid, outages: Sequence[tuple[str, int]]) -> bool:
    """Whether the grid is built and solved from its network's tables alone (no pandapower call): balanced
    power-grid-model, no batteries or outage switches added, no tap changers declared."""
    return (cfg.backend == "pgm" and not cfg.per_phase and not cfg.batteries and not outages
            and cfg.tap_control is None)


def _add_outage_switches(net, outages: Sequence[tuple[str, int]], network: str) -> dict[tuple[str, int], int]:
    """Equipment outages open a switch of their own, added before the solver is built (not commandable)."""
    added: dict[tuple[str, int], int] = {}
    if not outages:
        return added
    import pandapower as pp

    for element, index in outages:
        key = (element, index)
        table = net.line if element == "line" else net.trafo
        if index not in table.index:
            raise ValueError(f"events: outage of {element} {index}: no such {element} in {network}")
        if key not in added:
            bus = table.from_bus.at[index] if element == "line" else table.hv_bus.at[index]
            added[key] = int(pp.create_switch(net, int(bus), index, et="l" if element == "line" else "t",
                                              closed=True, name=f"outage {element} {index}"))
    return added


def _add_batteries(net, batteries: list[Battery]) -> BatteryFleet | None:
    """Each scenario battery becomes a load element at its bus, carrying the battery's power."""
    if not batteries:
        return None
    import pandapower as pp

    positions = []
    for b in batteries:
        if isinstance(b.bus, int):
            if b.bus not in net.bus.index:
                raise ValueError(f"grid.batteries {b.id}: no bus {b.bus} in the network")
            bus = b.bus
        else:
            match = net.bus.index[net.bus.name.astype(str) == b.bus]
            if len(match) != 1:
                raise ValueError(f"grid.batteries {b.id}: no single bus named {b.bus!r}")
            bus = int(match[0])
        idx = pp.create_load(net, bus, p_mw=0.0, q_mvar=0.0, name=f"battery {b.id}")
        positions.append(net.load.index.get_loc(idx))
    return BatteryFleet(
        load_pos=np.array(positions),
        capacity_mwh=np.array([b.capacity_kwh / 1000 for b in batteries]),
        p_charge_max_mw=np.array([b.p_max_kw / 1000 for b in batteries]),
        p_discharge_max_mw=np.array([b.p_max_kw / 1000 for b in batteries]),
        soc_mwh=np.array([b.soc * b.capacity_kwh / 1000 for b in batteries]),
        eta_charge=np.array([b.efficiency for b in batteries]),
        eta_discharge=np.array([b.efficiency for b in batteries]),
    )
