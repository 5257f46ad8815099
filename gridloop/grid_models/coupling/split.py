"""Cut an MV+LV pandapower net at its MV/LV transformers.

The MV net keeps every bus not behind an MV/LV transformer; each substation becomes a P/Q load on its
transformer's MV bus (named ``substation-<trafo>``).  Each LV net keeps the transformer and everything behind
it, with an ext_grid on the transformer's MV bus whose magnitude and angle come from the MV solve.  The LV
side therefore reports the power *at the MV terminal* (transformer losses included), which is exactly what
the MV net must carry: the split is exact, the only approximation is the coupling's iteration tolerance.
Bus, line and load indices are the whole net's, so results compare index by index.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandapower as pp
import pandapower.topology as top
from pandapower.toolbox import select_subnet

from gridloop.scenario.overrides import RunRefused

LV_KV_MAX = 1.0  # a transformer whose low side is at or below this is an MV/LV substation


@dataclass(frozen=True)
class LvSubstation:
    """One LV substation cut out of the whole net."""

    trafo: int  # the transformer's index in the whole net
    mv_bus: int  # its high-voltage bus: the slack of ``net`` and the load bus in the MV net
    net: pp.pandapowerNet | None  # transformer + LV grid, ext_grid at ``mv_bus`` (None: not cut out)
    mv_load: int  # index of the load standing for this substation in the MV net

    @property
    def load_index(self) -> np.ndarray:
        return self.net.load.index.to_numpy()


@dataclass(frozen=True)
class MvLvSplit:
    mv_net: pp.pandapowerNet
    substations: tuple[LvSubstation, ...]

    def substation(self, trafo: int) -> LvSubstation:
        return next(s for s in self.substations if s.trafo == trafo)


def substation_trafos(net: pp.pandapowerNet) -> list[int]:
    """The MV/LV transformers (labels, in net order) a split cuts at: in service, low side at most 1 kV."""
    lv_kv = net.bus.vn_kv.loc[net.trafo.lv_bus].to_numpy()
    return [int(t) for t in net.trafo.index[(lv_kv <= LV_KV_MAX) & net.trafo.in_service.to_numpy()]]


def _lv_buses(net: pp.pandapowerNet, trafo: int, graph) -> set[int]:
    lv_bus = int(net.trafo.at[trafo, "lv_bus"])
    return {int(b) for b in top.connected_component(graph, lv_bus)}


def split_at_substations(net: pp.pandapowerNet, lv_nets: Collection[int] | None = None) -> MvLvSplit:
    """MV net + one LV net per MV/LV transformer; LV substations must not be meshed with each other.

    ``lv_nets``: the transformers whose LV net is cut out (default all; the others' ``net`` is None), as a
    partition needs only its own and the MV federate none (cutting is most of the split's time).
    """
    trafos = substation_trafos(net)
    graph = top.create_nxgraph(net, include_trafos=False, respect_switches=True)
    behind = {int(t): _lv_buses(net, int(t), graph) for t in trafos}
    all_lv = set().union(*behind.values()) if behind else set()
    if sum(len(b) for b in behind.values()) != len(all_lv):
        raise RunRefused("LV grids of two substations are connected: grid.coupling splits the net at its "
                         "substations, so each needs a radial LV grid of its own")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mv_net = select_subnet(net, [b for b in net.bus.index if int(b) not in all_lv], include_results=False)
        substations = []
        for t in trafos:
            mv_bus = int(net.trafo.at[t, "hv_bus"])
            mv_load = pp.create_load(mv_net, mv_bus, p_mw=0.0, q_mvar=0.0, name=f"substation-{int(t)}")
            if lv_nets is not None and int(t) not in lv_nets:
                substations.append(LvSubstation(int(t), mv_bus, None, int(mv_load)))
                continue
            lv_net = select_subnet(net, [mv_bus, *sorted(behind[int(t)])], include_results=False)
            lv_net.ext_grid.drop(lv_net.ext_grid.index, inplace=True)
            lv_net.load.drop(lv_net.load.index[lv_net.load.bus == mv_bus], inplace=True)
            lv_net.sgen.drop(lv_net.sgen.index[lv_net.sgen.bus == mv_bus], inplace=True)
            pp.create_ext_grid(lv_net, mv_bus, vm_pu=1.0, va_degree=0.0)
            substations.append(LvSubstation(int(t), mv_bus, lv_net, int(mv_load)))
    return MvLvSplit(mv_net, tuple(substations))


def set_slack(lv: LvSubstation, vm_pu: float, va_degree: float) -> None:
    eg = lv.net.ext_grid.index[0]
    lv.net.ext_grid.at[eg, "vm_pu"] = vm_pu
    lv.net.ext_grid.at[eg, "va_degree"] = va_degree


def solve(net: pp.pandapowerNet) -> None:
    """The one power-flow setting used by the whole-net reference and by every part (angles on: Dyn shifts)."""
    pp.runpp(net, calculate_voltage_angles=True, init="dc", tolerance_mva=1e-10, numba=False)


def substation_power(lv: LvSubstation) -> complex:
    """P + jQ (MW, Mvar) the LV substation draws at its MV terminal, from its last solve."""
    return complex(lv.net.res_ext_grid.p_mw.iloc[0], lv.net.res_ext_grid.q_mvar.iloc[0])
