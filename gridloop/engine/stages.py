"""The simulator's stages as the engine sees them: the grid with its demand, and its actuators."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandapower as pp

from gridloop.controllers.simulator_controller import Actuator
from gridloop.engine.demand import Demand, SimbenchDemand, SyntheticDemand
from gridloop.grid_models.base import GridSolver, GridState
from gridloop.grid_models.networks import load_network
from gridloop.grid_models.solvers import make_solver
from gridloop.grid_models.storage import BatteryFleet
from gridloop.grid_models.zero_sequence import add_zero_sequence_defaults
from gridloop.profiles import ITALIAN_FAMILY, SWEDISH_APARTMENT, HouseholdParams
from gridloop.scenario.model import Households, Scenario

PRESETS = {"default": HouseholdParams(), "italian_family": ITALIAN_FAMILY, "swedish_apartment": SWEDISH_APARTMENT}


def unique_names(table, prefix: str) -> list[str]:
    """Element names for column headers: the net's name where it is set and unique, else prefix + index."""
    names = [str(n) for n in table.name]
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return [n if n not in ("", "None", "nan") and counts[n] == 1 else f"{prefix}{i}"
            for i, n in zip(table.index, names, strict=True)]


def build_demand(net, s: Scenario) -> Demand:
    """The scenario's demand source on this net."""
    h: Households = s.households
    if h.source == "simbench":
        return SimbenchDemand(net, s.clock.start, s.clock.step, s.seed, h.count, h.annual_kwh or 3000.0,
                              h.scale_spread)
    params = PRESETS[h.preset]
    changes: dict = {"pv_share": h.pv_share, "ev_share": h.ev_share, "heat_pump_share": h.heat_pump_share}
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
    batteries: BatteryFleet | None = None
    battery_ids: tuple[str, ...] = ()
    battery_setpoint_mw: np.ndarray | None = None
    curtailed_until_s: np.ndarray | None = None  # per home; inf while curtailed without end, nan when free
    step_s: float = 60.0
    now_s: float = 0.0  # start of the step being prepared; commands applied now take effect in it
    per_phase: bool = False
    outage_switches: dict | None = None  # (element, index) -> the switch that takes it out of service

    @classmethod
    def build(cls, s: Scenario) -> GridStage:
        net = load_network(s.grid.network)
        demand = build_demand(net, s)
        fleet = _add_batteries(net, s.grid.batteries)
        outage_switches = _add_outage_switches(net, s)
        if s.grid.per_phase:
            add_zero_sequence_defaults(net)
        solver = make_solver(net, s.grid.backend, per_phase=s.grid.per_phase)
        return cls(net, solver, demand, s.grid.backend, unique_names(net.bus, "bus"), unique_names(net.line, "line"),
                   unique_names(net.trafo, "trafo"), fleet, tuple(b.id for b in s.grid.batteries),
                   np.zeros(len(s.grid.batteries)), np.full(len(demand.load_index), np.nan), s.clock.step,
                   per_phase=s.grid.per_phase, outage_switches=outage_switches)

    @property
    def household_index(self) -> np.ndarray:
        return self.demand.load_index

    @cached_property
    def household_bus(self) -> np.ndarray:
        """Bus position (in net.bus order) of every household load."""
        bus_pos = {b: i for i, b in enumerate(self.net.bus.index)}
        return np.array([bus_pos[b] for b in self.net.load.bus.to_numpy()[self.demand.load_index]])

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
            self.batteries.step(self.battery_setpoint_mw, self.step_s / 3600.0)
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

    @property
    def trafo_lv_bus(self) -> np.ndarray:
        """Bus position (net.bus order) of every transformer's LV side."""
        bus_pos = {b: i for i, b in enumerate(self.net.bus.index)}
        return np.array([bus_pos[b] for b in self.net.trafo.lv_bus.to_numpy()], dtype=np.int64)

    def bus_v_phase(self, state: GridState) -> np.ndarray:
        """Phase-to-neutral voltage per bus and phase in volts, (n_bus, 3); 0 where de-energised."""
        vm = state.bus_vm_pu_phase if state.bus_vm_pu_phase is not None else np.repeat(
            state.bus_vm_pu[:, None], 3, axis=1)
        return vm * (self.solver.bus_vn_kv * 1000.0 / np.sqrt(3.0))[:, None]

    def served_home_phase_power(self, state: GridState) -> tuple[np.ndarray, np.ndarray]:
        """Per home and phase, the power it really drew (0 where its bus has no supply), W / var."""
        p3, q3 = self.demand.home_phase_power()
        on = state.bus_energized[self.household_bus][:, None]
        return np.where(on, p3, 0.0), np.where(on, q3, 0.0)

    def bus_v_ll(self, state: GridState) -> np.ndarray:
        """Line-to-line voltage per bus in volts (0 where de-energised)."""
        return state.bus_vm_pu * self.solver.bus_vn_kv * 1000.0


def _add_outage_switches(net, s: Scenario) -> dict[tuple[str, int], int]:
    """Equipment outages open a switch of their own, added before the solver is built (not commandable)."""
    from gridloop.scenario.model import EquipmentOutageEvent

    added: dict[tuple[str, int], int] = {}
    for e in s.events:
        if not isinstance(e, EquipmentOutageEvent):
            continue
        key = (e.outage.element, e.outage.index)
        table = net.line if key[0] == "line" else net.trafo
        if key[1] not in table.index:
            raise ValueError(f"events: outage of {key[0]} {key[1]}: no such {key[0]} in {s.grid.network}")
        if key not in added:
            bus = table.from_bus.at[key[1]] if key[0] == "line" else table.hv_bus.at[key[1]]
            added[key] = int(pp.create_switch(net, int(bus), key[1], et="l" if key[0] == "line" else "t",
                                              closed=True, name=f"outage {key[0]} {key[1]}"))
    return added


def _add_batteries(net, batteries) -> BatteryFleet | None:
    """Each scenario battery becomes a load element at its bus, carrying the battery's power."""
    if not batteries:
        return None
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


def battery_actuators(grid: GridStage) -> list[Actuator]:
    """Every scenario battery as a device taking ``storage.setpoint`` (p_kw, + charges)."""
    if grid.batteries is None:
        return []
    actuators = []
    for i, device in enumerate(grid.battery_ids):
        p_max_kw = float(grid.batteries.p_charge_max_mw[i] * 1000)

        def check(name: str, args: dict, limit: float = p_max_kw) -> str | None:
            p_kw = args.get("p_kw")
            if not isinstance(p_kw, int | float) or isinstance(p_kw, bool):
                return "storage.setpoint needs a number p_kw"
            if abs(p_kw) > limit:
                return f"p_kw={p_kw} is beyond the battery's ±{limit:g} kW"
            return None

        def setpoint(args: dict, i: int = i) -> str:
            grid.battery_setpoint_mw[i] = float(args["p_kw"]) / 1000
            return f"setpoint {args['p_kw']} kW"

        actuators.append(Actuator(device, "battery", {"storage.setpoint": setpoint}, check))
    return actuators


def flexible_load_actuators(grid: GridStage, meter_ids: list[str]) -> list[Actuator]:
    """Every metered home takes ``load.curtail`` (limit_kw, duration_s) and ``load.release`` on its meter."""
    actuators = []

    def check(name: str, args: dict) -> str | None:
        if name == "load.curtail":
            if float(args.get("limit_kw", -1)) < 0:
                return "limit_kw must be >= 0"
            if float(args.get("duration_s", 0)) <= 0:
                return "duration_s must be > 0"
        return None

    for home, device in enumerate(meter_ids):
        def curtail(args: dict, home: int = home) -> str:
            grid.demand.curtail(np.array([home]), float(args["limit_kw"]) * 1000)
            grid.curtailed_until_s[home] = grid.now_s + float(args["duration_s"])
            return f"flexible load capped at {args['limit_kw']} kW for {args['duration_s']} s"

        def release(args: dict, home: int = home) -> str:
            grid.demand.release(np.array([home]))
            grid.curtailed_until_s[home] = np.nan
            return "released"

        actuators.append(Actuator(device, "flexible_load", {"load.curtail": curtail, "load.release": release},
                                  check))
    return actuators


def transformer_actuators(grid: GridStage) -> list[Actuator]:
    """Every transformer with a tap changer as device ``tr<index>`` taking ``tap.set`` (position)."""
    actuators = []
    trafo = grid.net.trafo
    for idx in trafo.index:
        lo, hi = trafo.tap_min.get(idx), trafo.tap_max.get(idx)
        if lo is None or hi is None or lo != lo or hi != hi:  # no ratio tap changer
            continue

        def check(name: str, args: dict, lo: int = int(lo), hi: int = int(hi)) -> str | None:
            position = args.get("position")
            if not isinstance(position, int | float) or position != int(position) or not lo <= position <= hi:
                return f"position must be a whole number in [{lo}, {hi}]"
            return None

        def tap(args: dict, i: int = int(idx)) -> str:
            grid.solver.set_tap(i, int(args["position"]))
            return f"tap at {int(args['position'])}"

        actuators.append(Actuator(f"tr{int(idx)}", "transformer", {"tap.set": tap}, check))
    return actuators


def switch_actuators(grid: GridStage) -> list[Actuator]:
    """Every switch of the network as a commandable device ``sw<index>``."""
    actuators = []
    internal = set((grid.outage_switches or {}).values())
    for idx in grid.net.switch.index:
        if int(idx) in internal:
            continue
        def make(closed: bool, i: int = int(idx)):
            def act(args: dict) -> str:
                grid.set_switch(i, closed)
                return f"switch {i} {'closed' if closed else 'opened'}"
            return act
        actuators.append(Actuator(f"sw{int(idx)}", "switch",
                                  {"switch.open": make(False), "switch.close": make(True)}))
    return actuators
