"""Line short circuits: fault current (pandapower IEC 60909), the device that clears it, and the outage.

A fault at ``position`` (0 = from bus, 1 = to bus) of a line is modelled on a copy of the net in
which an auxiliary bus splits the line; :func:`pandapower.shortcircuit.calc_sc` with
``branch_results=True`` gives the fault current, branch currents and the bus voltages during the
fault (pandapower reports voltages at both ends of every branch; a bus takes the value of its
branch ends).  ``pre_fault="load_flow"`` (default) runs a power flow on the current loads first
and uses pandapower's superposition method (IEC 60909 "type C"), so voltages during the fault
start from the real pre-fault state and branch currents include load current;
``pre_fault="iec60909"`` uses the standard's equivalent source c·Un (c = 1.1 for ``case='max'``
in LV), which gives the conservative maximum current but flat pre-fault voltages of c pu (also
used for 1ph/2ph faults on nets with static generators, where pandapower's superposition fails).

Unbalanced faults ("1ph" to earth, "2ph"): pandapower gives the current but no bus voltages, so
the per-phase voltages during the fault come from power-grid-model's IEC 60909 short-circuit
calculation on the same split net (approximation: flat pre-fault c·Un, loads ignored; its fault
current is within ~2 % of pandapower's on the pilot grids).  ``bus_vm_pu_during`` is then the
lowest phase voltage, the one a meter's dip detection sees.  Needs zero-sequence data.

Protection: the clearing device is the nearest closed protective switch on the path from the
source (ext_grid) to the fault that picks up on the current through it; if it does not pick up,
the next one upstream is tried (back-up).  A switch is protective if ``net.switch.protection`` is
"fuse" or "breaker" (without that column: pandapower type "CB" counts as breaker); its rating is
``net.switch.in_ka``; operating times from :mod:`trip_curves`.
"""

from __future__ import annotations

import copy
import itertools
import logging
import warnings
from dataclasses import dataclass
from typing import Literal

import networkx as nx
import numpy as np
import pandapower as pp
import pandapower.shortcircuit as sc
import pandapower.topology as top
import pandas as pd

from gridloop.grid_models.pgm_faults import pgm_phase_voltages
from gridloop.grid_models.trip_curves import breaker_time_s, fuse_time_s
from gridloop.grid_models.zero_sequence import add_zero_sequence_defaults

DEFAULT_SOURCE_S_SC_MVA = 1000.0  # for nets whose ext_grid lacks short-circuit data
SGEN_K = 1.2  # short-circuit to rated current of inverter-fed sgens without a given k


@dataclass(frozen=True)
class FaultOutcome:
    """What a line fault does: current, clearing device and time, voltages during, outage after."""

    line: int  # net.line label of the faulted line
    position: float  # 0 = from bus ... 1 = to bus
    fault_current_ka: float  # initial symmetrical short-circuit current at the fault (ikss)
    clearing_switch: int  # net.switch label of the clearing device, -1 if nothing trips
    clearing_time_s: float  # inf if nothing trips
    device_current_ka: float  # current through the clearing device (nan if none)
    bus_vm_pu_during: np.ndarray  # (n_bus,) in net.bus order, lowest phase, 0 where unsupplied
    bus_vm_pu_phase_during: np.ndarray  # (n_bus, 3); 3ph faults: bus_vm_pu_during on every phase
    deenergised_buses: np.ndarray  # net.bus labels without supply once the device has opened


def protection_kind(net: pp.pandapowerNet) -> np.ndarray:
    """Per switch (net.switch order): "fuse", "breaker" or "" (not protective)."""
    sw = net.switch
    if "protection" in sw.columns:
        kind = sw["protection"].astype(object).where(sw["protection"].notna(), "").astype(str).to_numpy()
    else:
        kind = np.where(sw["type"].astype(str).to_numpy() == "CB", "breaker", "")
    return np.where(np.isin(kind, ["fuse", "breaker"]), kind, "")


def _split_line(net: pp.pandapowerNet, line: int, position: float) -> int:
    """Insert an auxiliary bus at ``position`` of ``line`` (in place); return the fault bus."""
    fb, tb = int(net.line.at[line, "from_bus"]), int(net.line.at[line, "to_bus"])
    if position <= 0.0:
        return fb
    if position >= 1.0:
        return tb
    aux = pp.create_bus(net, vn_kv=float(net.bus.at[fb, "vn_kv"]), name="fault")
    length = float(net.line.at[line, "length_km"])
    new = int(pp.create_line_from_parameters(net, aux, tb, (1 - position) * length, 1.0, 1.0, 0.0, 1.0))
    for col in net.line.columns:  # same cable data for the second part
        if col not in ("from_bus", "to_bus", "length_km", "name"):
            net.line.at[new, col] = net.line.at[line, col]
    net.line.at[line, "to_bus"] = aux
    net.line.at[line, "length_km"] = position * length
    at_to = (net.switch.et == "l") & (net.switch.element == line) & (net.switch.bus == tb)
    net.switch.loc[at_to, "element"] = new
    return aux


def _upstream_switches(net: pp.pandapowerNet, fault_bus: int) -> list[int]:
    """Closed protective switches on the path source -> fault, nearest the fault first."""
    graph = top.create_nxgraph(net, respect_switches=True, include_out_of_service=False)
    sources = [int(b) for b in net.ext_grid.bus[net.ext_grid.in_service.astype(bool)]]
    paths = [nx.shortest_path(graph, s, fault_bus) for s in sources if nx.has_path(graph, s, fault_bus)]
    if not paths:
        return []
    path = min(paths, key=len)
    kind = protection_kind(net)
    sw = net.switch
    closed = sw.closed.to_numpy(dtype=bool)
    et = sw.et.astype(str).to_numpy()
    element = sw.element.to_numpy(dtype=np.int64)
    found: list[int] = []
    for u, v in itertools.pairwise(path):  # path is short: a loop over its edges is fine
        for table, idx in graph[u][v]:
            code = {"line": "l", "trafo": "t"}.get(table)
            hit = (et == code) & (element == idx) & closed & (kind != "")
            found.extend(int(s) for s in sw.index[hit])
    return found[::-1]


def _branch_current_ka(net: pp.pandapowerNet, switch: int) -> float:
    """Short-circuit current through the branch a switch sits on (from ``res_*_sc``)."""
    row = net.switch.loc[switch]
    if row.et == "l":
        return float(net.res_line_sc.at[int(row.element), "ikss_ka"])
    side = "hv" if int(net.trafo.at[int(row.element), "hv_bus"]) == int(row.bus) else "lv"
    return float(net.res_trafo_sc.at[int(row.element), f"ikss_{side}_ka"])


def _bus_voltages(net: pp.pandapowerNet, n_bus: int) -> np.ndarray:
    """Bus voltages during the fault from branch-end results, for the first ``n_bus`` buses."""
    vm = np.zeros(n_bus)
    pos = net.bus.index.get_indexer
    for table, ends in (("line", ("from", "to")), ("trafo", ("hv", "lv"))):
        res = net[f"res_{table}_sc"]
        if res.empty:
            continue
        for end in ends:
            bus_col = f"{end}_bus"
            p = pos(net[table].loc[res.index, bus_col].to_numpy())
            v = np.nan_to_num(res[f"vm_{end}_pu"].to_numpy(dtype=float))
            keep = p < n_bus
            vm[p[keep]] = np.maximum(vm[p[keep]], v[keep])
    return vm


def simulate_line_fault(
    net: pp.pandapowerNet,
    line: int,
    position: float,
    *,
    r_fault_ohm: float = 0.0,
    x_fault_ohm: float = 0.0,
    fault: Literal["3ph", "2ph", "1ph"] = "3ph",
    case: Literal["max", "min"] = "max",
    pre_fault: Literal["load_flow", "iec60909"] = "load_flow",
    load_p_mw: np.ndarray | None = None,
    load_q_mvar: np.ndarray | None = None,
    source_s_sc_mva: float | None = None,
) -> FaultOutcome:
    """Short circuit on ``line`` at ``position`` (0..1) through a fault impedance; ``net`` is unchanged.

    ``load_p_mw``/``load_q_mvar`` (net.load order) set the pre-fault demand (default: the net's);
    ``source_s_sc_mva`` overrides the ext_grid short-circuit power (e.g. 250 MVA for a real 20 kV grid);
    missing short-circuit / zero-sequence data are filled with ``zero_sequence`` defaults (source 1000 MVA).
    Switch states and taps are the net's own (``net.switch.closed``), not a solver's.
    """
    if not 0.0 <= position <= 1.0:
        raise ValueError(f"position must lie in [0, 1], got {position}")
    if line not in net.line.index:
        raise ValueError(f"no line with index {line}")
    if pre_fault not in ("load_flow", "iec60909"):
        raise ValueError(f"pre_fault must be 'load_flow' or 'iec60909', not {pre_fault!r}")
    work, rating_ka = _fault_copy(net, load_p_mw, load_q_mvar, source_s_sc_mva)
    n_bus = len(net.bus)
    fault_bus = _split_line(work, line, position)
    _calc_short_circuit(work, fault_bus, fault, case, pre_fault, r_fault_ohm, x_fault_ohm)
    i_fault = float(work.res_bus_sc.at[fault_bus, "ikss_ka"])
    if fault == "3ph":
        vm = _bus_voltages(work, n_bus)
        vm_phase = np.repeat(vm[:, None], 3, axis=1)
    else:
        vm_phase = pgm_phase_voltages(work, fault_bus, fault, r_fault_ohm, x_fault_ohm, case)[:n_bus]
        vm = vm_phase.min(axis=1)
    switch, t_clear, i_dev = _clearing_device(work, fault_bus, rating_ka)
    after = copy.deepcopy(net)
    if switch >= 0:
        after.switch.at[switch, "closed"] = False
    return FaultOutcome(
        line=int(line),
        position=float(position),
        fault_current_ka=i_fault,
        clearing_switch=switch,
        clearing_time_s=t_clear,
        device_current_ka=i_dev,
        bus_vm_pu_during=vm,
        bus_vm_pu_phase_during=vm_phase,
        deenergised_buses=_unsupplied(after),
    )


def _fault_copy(net: pp.pandapowerNet, load_p_mw: np.ndarray | None, load_q_mvar: np.ndarray | None,
                source_s_sc_mva: float | None) -> tuple[pp.pandapowerNet, pd.Series]:
    """A copy of the net ready for IEC 60909 (demand, source, defaults, unsupplied parts out) and switch ratings."""
    work = copy.deepcopy(net)
    if load_p_mw is not None:
        work.load["p_mw"] = np.asarray(load_p_mw, dtype=float)
    if load_q_mvar is not None:
        work.load["q_mvar"] = np.asarray(load_q_mvar, dtype=float)
    if source_s_sc_mva is not None:
        work.ext_grid["s_sc_max_mva"] = work.ext_grid["s_sc_min_mva"] = float(source_s_sc_mva)
    add_zero_sequence_defaults(work, ext_grid_s_sc_mva=DEFAULT_SOURCE_S_SC_MVA)  # fills only what is missing
    for col in ("k", "kappa"):  # inverter-fed generation: short-circuit current 1.2 × rated where not given
        if len(work.sgen):
            work.sgen[col] = work.sgen[col].fillna(SGEN_K) if col in work.sgen else SGEN_K
    rating_ka = work.switch["in_ka"].astype(float) if "in_ka" in work.switch else pd.Series(np.nan, work.switch.index)
    # pandapower's switch results break on nets whose only switches are bus-bus ones when in_ka exists
    work.switch = work.switch.drop(columns="in_ka", errors="ignore")
    # parts already without supply (an open switch upstream) take no part in the fault: out of service,
    # since the short-circuit admittance matrix cannot hold isolated buses
    dead = list(top.unsupplied_buses(work))
    if dead:
        work.bus.loc[dead, "in_service"] = False
    return work, rating_ka


def _calc_short_circuit(work: pp.pandapowerNet, fault_bus: int, fault: str, case: str, pre_fault: str,
                        r_fault_ohm: float, x_fault_ohm: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)  # calc_sc warns on every call that branch results are "beta"
        try:
            # pandapower's superposition method fails for unbalanced faults with sgens: use c·Un there
            type_c = pre_fault == "load_flow" and (fault == "3ph" or not work.sgen.in_service.any())
            if type_c:
                pp.runpp(work, numba=False)
            sc.calc_sc(work, bus=fault_bus, fault=fault, case=case, branch_results=True,
                       r_fault_ohm=r_fault_ohm, x_fault_ohm=x_fault_ohm, use_pre_fault_voltage=type_c)
        finally:
            logging.disable(logging.NOTSET)


def _clearing_device(work: pp.pandapowerNet, fault_bus: int, rating_ka: pd.Series) -> tuple[int, float, float]:
    """(switch, clearing time s, its current kA) of the first device upstream whose curve trips; -1 if none."""
    kind = dict(zip(work.switch.index, protection_kind(work), strict=True))
    for s in _upstream_switches(work, fault_bus):
        i = _branch_current_ka(work, s)
        curve = fuse_time_s if kind[s] == "fuse" else breaker_time_s
        t = float(curve(np.array([i]), np.array([float(rating_ka.at[s])]))[0])
        if np.isfinite(t):
            return s, t, i
    return -1, np.inf, np.nan


def _unsupplied(net: pp.pandapowerNet) -> np.ndarray:
    """Bus labels not connected to any in-service ext_grid (graph search on closed switches)."""
    graph = top.create_nxgraph(net, respect_switches=True, include_out_of_service=False)
    sources = net.ext_grid.bus[net.ext_grid.in_service.astype(bool)].to_numpy()
    fed: set[int] = set()
    for s in sources:
        fed |= nx.node_connected_component(graph, int(s))
    labels = net.bus.index.to_numpy()
    return np.sort(labels[~np.isin(labels, list(fed))])
