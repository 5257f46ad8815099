"""A partition of a coupled run (``grid.coupling: helics``) as the grid stage's solver: an LV federate.

The grid stage keeps the whole net (its demand, meters and recorder are the whole district's, so every draw is
the same for any number of partitions), but its solver solves only the partition's contiguous block of LV
substations, each on its own power-grid-model solver with a slack on the transformer's MV bus. Each simulator
step is one HELICS step of ``federates.slot_time``: the same Gauss-Seidel sweeps as the coupling core, the
slack voltages coming from the MV federate (``scenario_federates.run_mv_scenario``) and the substations'
P + jQ going back to it. Buses of other partitions and of the MV grid (except the own substations' MV nodes)
are NaN in the state: nothing meters them here, and the recorder and summary skip NaN.
"""

from __future__ import annotations

import cmath
from dataclasses import dataclass

import helics as h
import numpy as np
import pandapower as pp

from gridloop.grid_models.base import GridState
from gridloop.grid_models.coupling.federates import (
    POWER_KEY,
    SLACK_KEY,
    _at,
    _federate,
    _finish,
    _Publisher,
    _publisher,
    slot_time,
)
from gridloop.grid_models.coupling.federation import partition_substations
from gridloop.grid_models.coupling.split import LvSubstation, split_at_substations, substation_trafos
from gridloop.grid_models.pgm_solver import PgmSolver
from gridloop.scenario.overrides import RunRefused


@dataclass(frozen=True)
class CouplingSlot:
    """Which LV federate this process is: partition ``part`` of ``parts``, on the run's HELICS broker."""

    part: int
    parts: int
    broker_address: str
    sweeps: int = 2


class _Own:
    """One of the partition's LV substations: its solver and where its elements sit in the whole net."""

    def __init__(self, lv: LvSubstation, net: pp.pandapowerNet) -> None:
        self.lv = lv
        self.solver = PgmSolver(lv.net, slack_control=True)
        self.bus = net.bus.index.get_indexer(lv.net.bus.index)
        self.load = net.load.index.get_indexer(lv.net.load.index)
        self.sgen = net.sgen.index.get_indexer(lv.net.sgen.index)
        self.line = net.line.index.get_indexer(lv.net.line.index)
        self.trafo = net.trafo.index.get_indexer(lv.net.trafo.index)
        self.switches = set(int(i) for i in lv.net.switch.index)
        self.state: GridState | None = None
        self.slack_in: h.HelicsInput | None = None
        self.power_out: _Publisher | None = None


def _block(trafos: list[int], part: int, parts: int) -> list[int]:
    if parts > len(trafos):
        raise RunRefused(f"{parts} partitions for {len(trafos)} LV substations: grid.coupling gives each "
                         "partition whole LV substations, so use at most as many partitions as substations")
    return partition_substations(trafos, parts)[part]


class CoupledLvSolver:
    """GridSolver of the whole net that solves only the partition's LV substations, coupled over HELICS."""

    def __init__(self, net: pp.pandapowerNet, slot: CouplingSlot) -> None:
        mine = set(_block(substation_trafos(net), slot.part, slot.parts))
        split = split_at_substations(net, lv_nets=mine)
        self.own = [_Own(s, net) for s in split.substations if s.trafo in mine]
        self.slot = slot
        self._vn_kv = net.bus.vn_kv.to_numpy(dtype=float).copy()
        self._n = {t: len(net[t]) for t in ("bus", "line", "trafo", "load")}
        self._p_mw = net.load.p_mw.to_numpy(dtype=float).copy()
        self._fed = _federate(f"lv-{slot.part}", slot.broker_address)
        for o in self.own:
            o.slack_in = h.helicsFederateRegisterSubscription(self._fed, SLACK_KEY.format(o.lv.trafo), "pu")
            h.helicsInputSetDefaultComplex(o.slack_in, 1.0, 0.0)
            o.power_out = _publisher(self._fed, POWER_KEY.format(o.lv.trafo), "MW")
        self._step = -1  # the HELICS step of the last solve; executing mode from the first solve
        self.residual: list[float] = []  # per step: the last sweep's largest change of a published P + jQ

    @property
    def bus_vn_kv(self) -> np.ndarray:
        return self._vn_kv

    @property
    def substations(self) -> list[int]:
        return [o.lv.trafo for o in self.own]

    def set_loads(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> None:
        self._p_mw = np.asarray(p_mw, dtype=float)
        for o in self.own:
            o.solver.set_loads(self._p_mw[o.load], np.asarray(q_mvar, dtype=float)[o.load])

    def set_sgens(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> None:
        for o in self.own:
            if o.sgen.size:
                o.solver.set_sgens(np.asarray(p_mw)[o.sgen], np.asarray(q_mvar)[o.sgen])

    def set_switch(self, switch_index: int, closed: bool) -> None:
        self._owner(lambda o: switch_index in o.switches, f"switch {switch_index}").solver.set_switch(
            switch_index, closed)

    def set_tap(self, trafo_index: int, position: int) -> None:
        self._owner(lambda o: o.lv.trafo == trafo_index, f"transformer {trafo_index}").solver.set_tap(
            trafo_index, position)

    def _owner(self, has, what: str) -> _Own:
        for o in self.own:
            if has(o):
                return o
        raise KeyError(f"{what} is not in this partition's LV substations (grid.coupling: helics)")

    def solve(self) -> GridState:
        """One simulator step = one HELICS step: the sweeps with the MV federate, then the last LV solve."""
        if self._step < 0:
            h.helicsFederateEnterExecutingMode(self._fed)
        self._step += 1
        sweeps = self.slot.sweeps
        for sweep in range(sweeps + 1):  # the last solve takes the final slack voltages
            _at(self._fed, slot_time(self._step, 2 * sweep))
            for o in self.own:
                v = complex(h.helicsInputGetComplex(o.slack_in))
                o.solver.set_slack(abs(v), cmath.phase(v))
                o.state = o.solver.solve()
                o.power_out.offer(o.solver.slack_power(), send=sweep < sweeps)
        self.residual.append(max((o.power_out.moved for o in self.own), default=0.0))
        return self._assemble()

    def _assemble(self) -> GridState:
        """The own substations' results in the whole net's positions; NaN voltage where another solves."""
        n = self._n
        vm = np.full(n["bus"], np.nan)
        energized = np.ones(n["bus"], dtype=bool)
        line = np.zeros(n["line"])
        trafo, trafo_p, trafo_q = np.zeros(n["trafo"]), np.zeros(n["trafo"]), np.zeros(n["trafo"])
        load_p = self._p_mw.copy()
        for o in self.own:
            st = o.state
            vm[o.bus], energized[o.bus] = st.bus_vm_pu, st.bus_energized
            line[o.line] = st.line_loading_percent
            trafo[o.trafo], trafo_p[o.trafo], trafo_q[o.trafo] = (st.trafo_loading_percent, st.trafo_p_mw,
                                                                  st.trafo_q_mvar)
            load_p[o.load] = st.load_p_mw
        return GridState(vm, energized, line, trafo, load_p, trafo_p_mw=trafo_p, trafo_q_mvar=trafo_q)

    def close(self) -> None:
        """Leave the federation (after the last step); the broker then ends the MV federate's wait."""
        if self._fed is not None:
            _finish(self._fed)
            self._fed = None
