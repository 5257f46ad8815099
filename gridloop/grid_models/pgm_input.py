"""Build power-grid-model input arrays from a pandapower net (balanced or per phase)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from power_grid_model import ComponentType, initialize_array

from gridloop.grid_models.topology import SwitchMap, branch_end_status, build_switch_map
from gridloop.grid_models.trafo_equivalents import (
    WINDINGS,
    dyn_zero_sequence_shunt_ohm,
    parse_vector_group,
    pgm_trafo_params,
    valid_clock,
)

if TYPE_CHECKING:
    import pandapower as pp

BusPos = Callable[[object], np.ndarray]  # bus labels -> positions
SOURCE_SK_VA = 1e15  # near-ideal slack, like pandapower's ext_grid in runpp
OMEGA = 2 * np.pi * 50.0
_UNSUPPORTED = ("trafo3w", "gen", "shunt", "impedance", "ward", "xward", "dcline", "asymmetric_sgen", "asymmetric_load")


@dataclass
class PgmLayout:
    """Ids and index maps linking pandapower tables to the PGM components."""

    n_bus: int
    load_ids: np.ndarray
    load_bus_pos: np.ndarray
    load_scaling: np.ndarray
    load_in_service: np.ndarray
    sgen_ids: np.ndarray
    sgen_scaling: np.ndarray
    line_ids: np.ndarray
    line_in_service: np.ndarray
    trafo_ids: np.ndarray
    trafo_in_service: np.ndarray
    trafo_vn_kv: np.ndarray  # (n_trafo, 2) rated hv / lv kV
    trafo_sn_mva: np.ndarray  # sn × parallel
    link_ids: np.ndarray
    switches: SwitchMap


def _check_supported(net: pp.pandapowerNet) -> None:
    for table in _UNSUPPORTED:
        if table in net and len(net[table]) and bool(net[table]["in_service"].any()):
            raise NotImplementedError(f"PgmSolver does not model in-service '{table}' elements")
    if not net.ext_grid.in_service.astype(bool).any():  # not .query(): its first call costs ~0.1 s of imports
        raise ValueError("network has no in-service ext_grid")


def _f(series: object, fill: float = 0.0) -> np.ndarray:
    return np.nan_to_num(np.asarray(series, dtype=float), nan=fill)


def _transformers(
    net: pp.pandapowerNet, bus_pos: BusPos, ids: np.ndarray, trafo_model: str, symmetric: bool
) -> np.ndarray:
    tr = net.trafo
    arr = initialize_array("input", ComponentType.transformer, len(tr))
    parallel = _f(tr.parallel, 1.0)
    sn_mva = _f(tr.sn_mva) * parallel
    uk, pk, i0, p0 = pgm_trafo_params(
        tr.vk_percent, tr.vkr_percent, _f(tr.i0_percent), _f(tr.pfe_kw), sn_mva, trafo_model
    )
    windings = np.array([parse_vector_group(v) for v in tr.vector_group.astype(str)], dtype=np.int64).reshape(-1, 2)
    arr["id"] = ids
    arr["from_node"] = bus_pos(tr.hv_bus)
    arr["to_node"] = bus_pos(tr.lv_bus)
    arr["u1"] = _f(tr.vn_hv_kv) * 1e3
    arr["u2"] = _f(tr.vn_lv_kv) * 1e3
    arr["sn"] = sn_mva * 1e6
    arr["uk"], arr["pk"], arr["i0"], arr["p0"] = uk, pk, i0, p0
    arr["winding_from"] = windings[:, 0]
    arr["winding_to"] = windings[:, 1]
    arr["clock"] = valid_clock(tr.shift_degree, windings[:, 0], windings[:, 1])
    # taps: pandapower applies them only for ratio-type changers without a phase step
    ctype = tr.tap_changer_type.astype(str).to_numpy() if "tap_changer_type" in tr else np.full(len(tr), "")
    active = np.isin(ctype, ["Ratio", "Symmetrical"]) & (np.abs(_f(tr.get("tap_step_degree", 0.0))) < 1e-12)
    tap_nom = _f(tr.tap_neutral).astype(np.int64)
    tap_pos = np.where(active, _f(tr.tap_pos), tap_nom).astype(np.int64)
    lv_side = tr.tap_side.astype(str).to_numpy() == "lv"
    arr["tap_side"] = lv_side.astype(np.int8)
    arr["tap_pos"] = tap_pos
    arr["tap_nom"] = tap_nom
    arr["tap_min"] = np.where(active, _f(tr.tap_min, np.nan), tap_pos)
    arr["tap_max"] = np.where(active, _f(tr.tap_max, np.nan), tap_pos)
    arr["tap_min"] = np.where(np.isnan(arr["tap_min"]), tap_pos, arr["tap_min"])
    arr["tap_max"] = np.where(np.isnan(arr["tap_max"]), tap_pos, arr["tap_max"])
    vn_side = np.where(lv_side, arr["u2"], arr["u1"])
    arr["tap_size"] = np.where(active, _f(tr.tap_step_percent) / 100.0 * vn_side, 0.0)
    if not symmetric:
        dyn = (windings[:, 0] == WINDINGS["d"]) & (windings[:, 1] == WINDINGS["yn"])
        if not dyn.all():
            raise NotImplementedError("per-phase PgmSolver supports Dyn transformers only")
        for col in ("vk0_percent", "vkr0_percent", "mag0_percent", "mag0_rx", "si0_hv_partial"):
            if col not in tr:
                raise ValueError(f"per-phase solve needs net.trafo.{col} (see zero_sequence.py)")
        # match pandapower's LV zero-sequence shunt through the grounding impedance (note's recipe)
        z_shunt = dyn_zero_sequence_shunt_ohm({c: tr[c].to_numpy() for c in tr.columns}, trafo_model)
        z_base = arr["u2"] ** 2 / arr["sn"]
        z_series = (pk / arr["sn"] + 1j * np.sqrt(np.maximum(uk**2 - (pk / arr["sn"]) ** 2, 0.0))) * z_base
        z_ground = (z_shunt - z_series) / 3.0
        arr["i0_zero_sequence"] = 0.0
        arr["p0_zero_sequence"] = 0.0
        arr["r_grounding_to"] = z_ground.real
        arr["x_grounding_to"] = z_ground.imag
        arr["r_grounding_from"] = 0.0
        arr["x_grounding_from"] = 0.0
    return arr


def _lines(net: pp.pandapowerNet, bus_pos: BusPos, ids: np.ndarray, symmetric: bool) -> np.ndarray:
    ln = net.line
    arr = initialize_array("input", ComponentType.line, len(ln))
    length = _f(ln.length_km)
    parallel = _f(ln.parallel, 1.0)
    c1 = _f(ln.c_nf_per_km) * 1e-9 * length * parallel
    g1 = _f(ln.g_us_per_km) * 1e-6 * length * parallel
    arr["id"] = ids
    arr["from_node"] = bus_pos(ln.from_bus)
    arr["to_node"] = bus_pos(ln.to_bus)
    arr["r1"] = _f(ln.r_ohm_per_km) * length / parallel
    arr["x1"] = _f(ln.x_ohm_per_km) * length / parallel
    arr["c1"] = c1
    arr["tan1"] = np.divide(g1, OMEGA * c1, out=np.zeros_like(c1), where=c1 > 0)
    arr["i_n"] = _f(ln.max_i_ka) * 1e3 * _f(ln.df, 1.0) * parallel
    if not symmetric:
        for col in ("r0_ohm_per_km", "x0_ohm_per_km", "c0_nf_per_km"):
            if col not in ln:
                raise ValueError(f"per-phase solve needs net.line.{col} (see zero_sequence.py)")
        arr["r0"] = _f(ln.r0_ohm_per_km) * length / parallel
        arr["x0"] = _f(ln.x0_ohm_per_km) * length / parallel
        c0 = _f(ln.c0_nf_per_km) * 1e-9 * length * parallel
        g0 = _f(ln.get("g0_us_per_km", 0.0)) * 1e-6 * length * parallel
        arr["c0"] = c0
        arr["tan0"] = np.divide(g0, OMEGA * c0, out=np.zeros_like(c0), where=c0 > 0)
    return arr


class _Ids:
    """Positions of buses and consecutive PGM ids for the components, in the order they are built."""

    def __init__(self, net: pp.pandapowerNet) -> None:
        self.index = net.bus.index
        self.next_id = len(net.bus)
        self.bus_ok = net.bus.in_service.to_numpy(dtype=bool)

    def bus_pos(self, col: object) -> np.ndarray:
        pos = self.index.get_indexer(np.asarray(col, dtype=np.int64))
        if (pos < 0).any():
            raise ValueError("element refers to a missing bus")
        return pos

    def take(self, n: int) -> np.ndarray:
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int32)
        self.next_id += n
        return ids


def _sources(net: pp.pandapowerNet, ids: _Ids) -> np.ndarray:
    eg = net.ext_grid[net.ext_grid.in_service.astype(bool)]
    sources = initialize_array("input", ComponentType.source, len(eg))
    sources["id"] = ids.take(len(eg))
    sources["node"] = ids.bus_pos(eg.bus)
    sources["status"] = 1
    sources["u_ref"] = _f(eg.vm_pu, 1.0)
    sources["u_ref_angle"] = np.deg2rad(_f(eg.va_degree))
    sources["sk"] = SOURCE_SK_VA
    sources["rx_ratio"] = 0.1
    sources["z01_ratio"] = 1.0
    return sources


def _loads(net: pp.pandapowerNet, ids: _Ids, symmetric: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PGM loads (constant power, split evenly over the phases when asymmetric), their scaling and service."""
    ld = net.load
    load_ids = ids.take(len(ld))
    load_bus = ids.bus_pos(ld.bus)
    scaling = _f(ld.scaling, 1.0)
    in_service = ld.in_service.to_numpy(dtype=bool) & ids.bus_ok[load_bus]
    loads = initialize_array("input", ComponentType.sym_load if symmetric else ComponentType.asym_load, len(ld))
    loads["id"] = load_ids
    loads["node"] = load_bus
    loads["status"] = in_service
    loads["type"] = 0  # constant power
    p = _f(ld.p_mw) * scaling * 1e6
    q = _f(ld.q_mvar) * scaling * 1e6
    if symmetric:
        loads["p_specified"], loads["q_specified"] = p, q
    else:
        loads["p_specified"] = np.repeat(p[:, None] / 3.0, 3, axis=1)
        loads["q_specified"] = np.repeat(q[:, None] / 3.0, 3, axis=1)
    return loads, scaling, in_service


def _injections(net: pp.pandapowerNet, ids: _Ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Static generators (updatable via set_sgens) with their scaling, and storages as fixed loads."""
    sg = net.sgen
    scaling = _f(sg.scaling, 1.0)
    gens = initialize_array("input", ComponentType.sym_gen, len(sg))
    gens["id"] = ids.take(len(sg))
    gens["node"] = ids.bus_pos(sg.bus)
    gens["status"] = sg.in_service.to_numpy(dtype=bool) & ids.bus_ok[gens["node"]]
    gens["type"] = 0
    gens["p_specified"] = _f(sg.p_mw) * scaling * 1e6
    gens["q_specified"] = _f(sg.q_mvar) * scaling * 1e6
    st = net.storage if "storage" in net else None
    n_st = 0 if st is None else len(st)
    storages = initialize_array("input", ComponentType.sym_load, n_st)
    if n_st:
        storages["id"] = ids.take(n_st)
        storages["node"] = ids.bus_pos(st.bus)
        storages["status"] = st.in_service.to_numpy(dtype=bool)
        storages["type"] = 0
        storages["p_specified"] = _f(st.p_mw) * _f(st.scaling, 1.0) * 1e6
        storages["q_specified"] = _f(st.q_mvar) * _f(st.scaling, 1.0) * 1e6
    return gens, scaling, storages


def _branches(net: pp.pandapowerNet, ids: _Ids, symmetric: bool, trafo_model: str, smap, closed: np.ndarray):
    """Lines, transformers and bus-bus links with their end statuses from the switches."""
    bus_ok = ids.bus_ok
    line_ids = ids.take(len(net.line))
    lines = _lines(net, ids.bus_pos, line_ids, symmetric)
    line_in_service = net.line.in_service.to_numpy(dtype=bool) & bus_ok[lines["from_node"]] & bus_ok[lines["to_node"]]
    lines["from_status"], lines["to_status"] = branch_end_status(smap, closed, 0, line_in_service)
    trafo_ids = ids.take(len(net.trafo))
    trafos = _transformers(net, ids.bus_pos, trafo_ids, trafo_model, symmetric)
    trafo_in_service = (
        net.trafo.in_service.to_numpy(dtype=bool) & bus_ok[trafos["from_node"]] & bus_ok[trafos["to_node"]]
    )
    trafos["from_status"], trafos["to_status"] = branch_end_status(smap, closed, 1, trafo_in_service)
    bb = smap.kind == 2
    link_ids = ids.take(int(bb.sum()))
    links = initialize_array("input", ComponentType.link, link_ids.size)
    links["id"] = link_ids
    links["from_node"] = ids.bus_pos(net.switch.bus.to_numpy()[bb])
    links["to_node"] = ids.bus_pos(net.switch.element.to_numpy()[bb])
    links["from_status"] = links["to_status"] = closed[bb]
    return lines, line_in_service, trafos, trafo_in_service, links


def build_pgm_input(
    net: pp.pandapowerNet, *, symmetric: bool = True, trafo_model: str = "t"
) -> tuple[dict[ComponentType, np.ndarray], PgmLayout]:
    """Return the PGM input dataset and the layout; switch states are taken from ``net.switch.closed``."""
    _check_supported(net)
    n_bus = len(net.bus)
    ids = _Ids(net)
    nodes = initialize_array("input", ComponentType.node, n_bus)
    nodes["id"] = np.arange(n_bus)
    nodes["u_rated"] = _f(net.bus.vn_kv) * 1e3
    smap = build_switch_map(net)
    closed = net.switch.closed.to_numpy(dtype=bool) if len(net.switch) else np.zeros(0, bool)
    lines, line_in_service, trafos, trafo_in_service, links = _branches(net, ids, symmetric, trafo_model, smap,
                                                                        closed)
    sources = _sources(net, ids)
    loads, load_scaling, load_in_service = _loads(net, ids, symmetric)
    gens, sgen_scaling, storages = _injections(net, ids)
    load_type = ComponentType.sym_load if symmetric else ComponentType.asym_load
    data: dict[ComponentType, np.ndarray] = {
        ComponentType.node: nodes, ComponentType.line: lines, ComponentType.transformer: trafos,
        ComponentType.link: links, ComponentType.source: sources, load_type: loads, ComponentType.sym_gen: gens,
    }
    if len(storages):
        data[ComponentType.sym_load] = (
            np.concatenate([data[ComponentType.sym_load], storages]) if symmetric else storages
        )
    layout = PgmLayout(
        n_bus=n_bus, load_ids=loads["id"], load_bus_pos=loads["node"].astype(np.intp), load_scaling=load_scaling,
        load_in_service=load_in_service, sgen_ids=gens["id"], sgen_scaling=sgen_scaling,
        line_ids=lines["id"], line_in_service=line_in_service, trafo_ids=trafos["id"],
        trafo_in_service=trafo_in_service,
        trafo_vn_kv=np.column_stack([_f(net.trafo.vn_hv_kv), _f(net.trafo.vn_lv_kv)]),
        trafo_sn_mva=_f(net.trafo.sn_mva) * _f(net.trafo.parallel, 1.0),
        link_ids=links["id"], switches=smap,
    )
    return data, layout
