"""``Grid``: gridloop's grid stage (pandapower or power-grid-model net, solver, batteries) as a mosaik simulator.

The net comes by the same names as in scenario files. Loads and static generators take P/Q from mosaik (the sum
of what is connected; an unconnected element keeps its value from the net), switches and battery set-points are
commands, and every bus, line and transformer reports its solved state.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gridloop.grid_models.grid_stage import GridOutput, GridStage
from gridloop.mosaik.common import API_VERSION, SimClock, entity, scenario_of
from gridloop.scenario.model import EquipmentOutageEvent
from gridloop.scenario.model import Grid as GridSection
from gridloop.stage import Clock, Outputs

try:
    import mosaik_api_v3
except ImportError as exc:  # pragma: no cover - depends on the extra
    raise ImportError("gridloop.mosaik needs the mosaik extra: pip install 'gridloop[mosaik]'") from exc

META = {
    "api_version": API_VERSION,
    "type": "time-based",
    "models": {
        "Grid": {"public": True, "params": ["scenario", "network", "backend", "per_phase", "seed", "step_s"],
                 "attrs": ["converged"]},
        "Bus": {"public": False, "params": [], "attrs": ["vm_pu", "energized", "vn_kv"]},
        "Load": {"public": False, "params": [], "attrs": ["p_mw", "q_mvar", "served_p_mw"]},
        "Sgen": {"public": False, "params": [], "attrs": ["p_mw"]},  # feed-in at unity power factor, as in a run
        "Line": {"public": False, "params": [], "attrs": ["loading_percent"]},
        "Trafo": {"public": False, "params": [], "attrs": ["loading_percent", "p_mw", "q_mvar"]},
        "Switch": {"public": False, "params": [], "attrs": ["closed"]},
        "Battery": {"public": False, "params": [], "attrs": ["p_mw", "soc"]},
    },
}


class ExternalDemand:
    """The grid stage's demand, set by mosaik every step: the net's own values where nothing is connected."""

    def __init__(self, net) -> None:
        self.load_index = np.arange(len(net.load))
        self.p_mw = net.load.p_mw.to_numpy(dtype=float).copy()
        self.q_mvar = net.load.q_mvar.to_numpy(dtype=float).copy()
        self.sgen_p_mw = net.sgen.p_mw.to_numpy(dtype=float).copy()
        self.sgens_set = False

    def at(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        return self.p_mw.copy(), self.q_mvar.copy()

    def curtail(self, homes: np.ndarray, limit_w: float) -> None:
        """Curtailment belongs to the homes' simulator (HouseholdFleet), not to the grid."""

    def release(self, homes: np.ndarray) -> None:
        """See curtail."""

    def energy_not_served_wh(self) -> np.ndarray:
        return np.zeros(len(self.load_index))

    def generation_at(self, t_s: float) -> np.ndarray | None:
        return self.sgen_p_mw.copy() if self.sgens_set else None

    def held_back_w(self) -> float:
        return 0.0

    def home_phase(self) -> np.ndarray:
        return np.full(len(self.load_index), -1)

    def home_seconds(self, homes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """mosaik sets one value per step: nothing within it."""
        return None

    def home_phase_power(self) -> tuple[np.ndarray, np.ndarray]:
        p, q = self.p_mw * 1e6, self.q_mvar * 1e6
        return np.repeat(p[:, None] / 3, 3, axis=1), np.repeat(q[:, None] / 3, 3, axis=1)


def _positions(index: pd.Index, prefix: str) -> dict[str, int]:
    """Entity id → position in the net's table, ids by the net's own row labels."""
    return {f"{prefix}-{label}": i for i, label in enumerate(index)}


class Grid(mosaik_api_v3.Simulator):
    """One gridloop grid per simulator instance; its elements are the Grid entity's children."""

    def __init__(self) -> None:
        super().__init__(META)
        self.grid: GridStage | None = None
        self.demand: ExternalDemand | None = None
        self.output: GridOutput | None = None
        self.clock = SimClock(1.0, 60.0)
        self.epoch_ms = 0
        self.index: dict[str, dict[str, int]] = {}

    def init(self, sid: str, time_resolution: float = 1.0, **sim_params: object) -> dict:
        self.sid = sid
        self.time_resolution = float(time_resolution)
        return self.meta

    def create(self, num: int, model: str, scenario: str | None = None, network: str | None = None,
               backend: str = "pgm", per_phase: bool = False, seed: int | None = None,
               step_s: float | None = None) -> list[dict]:
        if model != "Grid" or num != 1 or self.grid is not None:
            raise ValueError("gridloop.mosaik.Grid makes one Grid entity per simulator: create(1, 'Grid', ...)")
        outages: list[tuple[str, int]] = []
        if scenario is not None:
            s = scenario_of(scenario, seed)
            section, seed, step_s = s.grid, s.seed, step_s or s.clock.step
            # as in gridloop run: an equipment outage gets a switch of its own (the net's switches then match)
            outages = [(e.outage.element, e.outage.index) for e in s.events if isinstance(e, EquipmentOutageEvent)]
        elif network is not None:
            section = GridSection(network=network, backend=backend, per_phase=per_phase)
            seed, step_s = seed or 0, step_s or 60.0
        else:
            raise ValueError("Grid needs scenario=<scenario file> or network=<name as in a scenario's grid section>")
        self.clock = SimClock(self.time_resolution, float(step_s))

        def external(net) -> ExternalDemand:
            self.demand = ExternalDemand(net)
            return self.demand

        self.grid = GridStage.build(section, external, outages, self.clock.period_ms, seed)
        return [entity("Grid-0", "Grid", self._children(), network=section.network, backend=section.backend)]

    def _children(self) -> list[dict]:
        net = self.grid.net
        n_loads = len(self.demand.load_index)
        tables = {"Bus": net.bus.index, "Load": net.load.index[:n_loads], "Sgen": net.sgen.index,
                  "Line": net.line.index, "Trafo": net.trafo.index, "Switch": net.switch.index}
        self.index = {model: _positions(labels, model) for model, labels in tables.items()}
        self.index["Battery"] = {f"Battery-{b}": i for i, b in enumerate(self.grid.battery_ids)}
        children = []
        for model, ids in self.index.items():
            for eid, pos in ids.items():
                extra = {"bus": int(net[model.lower()].bus.iat[pos])} if model in ("Load", "Sgen") else {}
                if model == "Bus":
                    extra = {"vn_kv": float(net.bus.vn_kv.iat[pos]), "name": str(self.grid.bus_names[pos])}
                children.append(entity(eid, model, **extra))
        return children

    def step(self, time: int, inputs: dict, max_advance: int) -> int:
        self._apply(inputs)
        now_ms = self.clock.now_ms(time)
        self.output = self.grid.step(Clock(now_ms, self.clock.period_ms, self.epoch_ms), Outputs())
        return time + self.clock.step_size

    def _apply(self, inputs: dict) -> None:
        """Set this step's P/Q, switch positions and battery set-points from what mosaik delivered."""
        d, grid = self.demand, self.grid
        for eid, attrs in inputs.items():
            model = eid.split("-", 1)[0]
            pos = self.index.get(model, {}).get(eid)
            if pos is None:
                raise ValueError(f"gridloop.mosaik.Grid: no entity {eid!r}")
            for attr, sources in attrs.items():
                values = list(sources.values())
                if model == "Switch":
                    closed = bool(values[-1])
                    if closed != bool(grid.net.switch.closed.iat[pos]):
                        grid.set_switch(int(grid.net.switch.index[pos]), closed)
                    continue
                total = float(sum(values))
                if model == "Load":
                    (d.p_mw if attr == "p_mw" else d.q_mvar)[pos] = total
                elif model == "Sgen":
                    d.sgen_p_mw[pos] = total
                    d.sgens_set = True
                elif model == "Battery":
                    grid.battery_setpoint_mw[pos] = total

    def get_data(self, outputs: dict) -> dict:
        arrays = self._arrays()
        data = {}
        for eid, attrs in outputs.items():
            model = eid.split("-", 1)[0]
            if model == "Grid":
                data[eid] = {attr: self.output is not None for attr in attrs}
                continue
            pos = self.index[model][eid]
            row = {}
            for attr in attrs:
                values = arrays.get((model, attr))
                row[attr] = None if values is None else values[pos].item()
            data[eid] = row
        return data

    def _arrays(self) -> dict[tuple[str, str], np.ndarray | None]:
        """Every output attribute as an array over its model's entities (None before the first step)."""
        if self.output is None:
            return {}
        state, net, d, b = self.output.state, self.grid.net, self.demand, self.grid.batteries
        arrays = {
            ("Bus", "vm_pu"): state.bus_vm_pu, ("Bus", "energized"): state.bus_energized,
            ("Bus", "vn_kv"): net.bus.vn_kv.to_numpy(), ("Load", "p_mw"): d.p_mw, ("Load", "q_mvar"): d.q_mvar,
            ("Load", "served_p_mw"): state.load_p_mw, ("Sgen", "p_mw"): d.sgen_p_mw,
            ("Line", "loading_percent"): state.line_loading_percent,
            ("Trafo", "loading_percent"): state.trafo_loading_percent,
            ("Trafo", "p_mw"): state.trafo_p_mw, ("Trafo", "q_mvar"): state.trafo_q_mvar,
            ("Switch", "closed"): net.switch.closed.to_numpy(),
        }
        if b is not None:
            arrays[("Battery", "p_mw")] = b.p_mw
            arrays[("Battery", "soc")] = b.soc_mwh / b.capacity_mwh
        return arrays
