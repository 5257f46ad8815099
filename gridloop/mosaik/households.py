"""``HouseholdFleet``: gridloop's appliance-level homes as a mosaik simulator (model ``Home``).

The homes are the scenario's own (same net, households section and seed as ``gridloop run``), so a Home
gives, step for step, exactly the P and Q the run's grid stage would see at that home's load.
Outputs: P/Q in total and per phase, flexible load; input: ``curtail_w`` caps the flexible load (NaN lifts it).
"""

from __future__ import annotations

import math

import numpy as np

from gridloop.grid_models.networks import grid_network
from gridloop.mosaik.common import API_VERSION, SimClock, entity, scenario_of
from gridloop.profiles.demand import SimbenchDemand, SyntheticDemand, build_demand

try:
    import mosaik_api_v3
except ImportError as exc:  # pragma: no cover - depends on the extra
    raise ImportError("gridloop.mosaik needs the mosaik extra: pip install 'gridloop[mosaik]'") from exc

PHASE_ATTRS = ("p_a_w", "p_b_w", "p_c_w", "q_a_var", "q_b_var", "q_c_var")
META = {
    "api_version": API_VERSION,
    "type": "time-based",
    "models": {
        "Home": {"public": True, "params": [],
                 "attrs": ["p_mw", "q_mvar", *PHASE_ATTRS, "flexible_w", "curtail_w", "phase"]},
    },
}


class HouseholdFleet(mosaik_api_v3.Simulator):
    """The scenario's homes; ``create(n, "Home")`` hands out the next n of them, in the net's load order."""

    def __init__(self) -> None:
        super().__init__(META)
        self.demand: SyntheticDemand | SimbenchDemand | None = None
        self.eids: list[str] = []
        self._p = self._q = np.zeros(0)

    def init(self, sid: str, time_resolution: float = 1.0, scenario: str | None = None, seed: int | None = None,
             **sim_params: object) -> dict:
        """``scenario``: the scenario file whose grid, households, clock and seed make the homes."""
        if scenario is None:
            raise ValueError("HouseholdFleet needs scenario=<scenario file> (its grid, households, clock, seed)")
        s = scenario_of(scenario, seed)
        self.clock = SimClock(float(time_resolution), s.clock.step)
        self.net = grid_network(s.grid, s.seed)
        self.demand = build_demand(self.net, s.households, s.clock.start, self.clock.period_ms, s.seed)
        self.curtailed = np.zeros(len(self.demand.load_index), dtype=bool)
        return self.meta

    def create(self, num: int, model: str, **model_params: object) -> list[dict]:
        first = len(self.eids)
        homes = self.demand.load_index
        if model != "Home" or first + num > len(homes):
            raise ValueError(f"HouseholdFleet has {len(homes)} homes; {first} already created, {num} more asked")
        phase = self.demand.home_phase()
        out = []
        for i in range(first, first + num):
            label = self.net.load.index[homes[i]]
            eid = f"Home-{label}"
            self.eids.append(eid)
            out.append(entity(eid, "Home", load=int(label), bus=int(self.net.load.bus.iat[homes[i]]),
                              phase=int(phase[i])))
        self._pos = {eid: i for i, eid in enumerate(self.eids)}
        return out

    def step(self, time: int, inputs: dict, max_advance: int) -> int:
        for eid, attrs in inputs.items():
            limits = [v for v in attrs.get("curtail_w", {}).values() if v is not None and not math.isnan(v)]
            i = self._pos[eid]
            if limits:
                self.demand.curtail(np.array([i]), min(limits))
                self.curtailed[i] = True
            elif self.curtailed[i]:
                self.demand.release(np.array([i]))
                self.curtailed[i] = False
        p, q = self.demand.at(self.clock.now_ms(time) / 1000)  # every load of the net, MW / Mvar
        self._p, self._q = p[self.demand.load_index], q[self.demand.load_index]
        self._p3, self._q3 = self.demand.home_phase_power()
        synthetic = isinstance(self.demand, SyntheticDemand)  # SimBench's measured homes have no appliances
        self._flex = self.demand.fleet.last_flexible_w() if synthetic else np.zeros(len(self._p))
        return time + self.clock.step_size

    def get_data(self, outputs: dict) -> dict:
        data = {}
        for eid, attrs in outputs.items():
            i = self._pos[eid]
            row = {}
            for attr in attrs:
                if attr == "p_mw":
                    row[attr] = float(self._p[i])
                elif attr == "q_mvar":
                    row[attr] = float(self._q[i])
                elif attr in PHASE_ATTRS:
                    k = PHASE_ATTRS.index(attr)
                    row[attr] = float((self._p3 if k < 3 else self._q3)[i, k % 3])
                elif attr == "flexible_w":
                    row[attr] = float(self._flex[i])
                elif attr == "phase":
                    row[attr] = int(self.demand.home_phase()[i])
                else:
                    row[attr] = None
            data[eid] = row
        return data
