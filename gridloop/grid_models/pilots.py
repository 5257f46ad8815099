"""Pilot-like grids of the FLEXMETER pilots (Hyllie/Malmö and Turin), built with metering metadata.

The deployment report (D6.3, sections 3-4) gives only meter counts; the electrical data below are
SimBench-/pandapower-typical choices, written down here so results can be judged:

* Source: ``ext_grid`` on a 20 kV busbar (the 110/20 kV primary substation is not modelled),
  vm 1.0 pu, near-ideal short-circuit power (1e8 MVA, see ``zero_sequence``) so that both solver
  backends agree; LV fault currents are then limited by the 20/0.4 kV transformer, as in practice.
* MV: NA2XS2Y 1x240 RM/25 12/20 kV cable.  Hyllie: a radial 20 kV cable to two substations.
  Turin: an open ring (root-S0-S1-S2 and root-S5-S4-S3, normally-open tie S2-S3) with a circuit
  breaker (IEC standard-inverse relay, pickup 400 A) at each ring end in the primary substation.
* MV/LV: pandapower std type "0.63 MVA 20/0.4 kV" (vk 6 %, Dyn5, HV tap ±2 × 2.5 %).
* LV feeders: trunk from the busbar in NAYY 4x240 SE (r 0.125 Ω/km, x 0.08 Ω/km, 364 A; defined
  here as SimBench's ``NAYY 4x240SE 0.6/1kV`` is not a pandapower std type), further sections in
  NAYY 4x150 SE.  Every feeder's first line has a fuse (gG NH, 315 A) at the substation end:
  ``net.switch.protection == "fuse"`` and ``in_ka`` the rated current.  Zero-sequence data come
  from ``zero_sequence.add_zero_sequence_defaults`` (r0 = 4 r1 etc.).
* Loads carry ``meter_kind`` (None for loads without a pilot meter, e.g. background load or the
  Hyllie battery), ``phase`` (0/1/2 single-phase, -1 three-phase), ``gateway`` (PLC/radio
  concentrator group or -1), ``annual_kwh`` and ``sampling_s``.  p_mw is an evening-typical
  demand: annual_kwh / 8760 h × 2.5.  ``net.bus.feeder`` / ``net.line.feeder`` number the LV
  feeders (-1 for MV and busbars).  ``net["meter_points"]`` lists the meters that are not loads:
  kind "substation" (element "trafo": LV side of the transformer; element "line": a feeder head)
  and "district_heating" (element "bus"), with ``index`` into that element's table, the ``bus``
  and the substation's ``trafo`` (-1 for heat meters).

Hyllie: 2 substations × 4 feeders × 2-3 apartment buildings (meter blocks, 15-16 three-phase
apartment meters each, 1 500-3 500 kWh/a: Swedish flats with district heating) = 318 meters, 2
transformer meters, 2 district-heating points, and a 100 kW / 200 kWh battery (load "battery").
Turin: 6 substations × 4 feeders; 5 substation meters each (transformer + 4 feeder heads) = 30;
Environment Park on S0/S1: 10 gateway buildings with 73 single-phase meters (3 000-15 000 kWh/a,
1 s); 40 single-phase homes on S2/S3 (1 800-3 600 kWh/a; every 4th with a 1 Hz NIALM home meter,
the rest 15-min); 7 district-heating meters in homes' buildings; unmetered three-phase background
load on every feeder end (S0-S3: 20 kW, S4/S5: 2 × 40 kW).
Cable lengths (seeded, uniform): MV sections 0.4-0.9 km (Hyllie) / 0.5-1.2 km (Turin); LV trunk
50-250 m; between buildings 30-80 m, between Turin homes 20-40 m (dense urban grids).  The MV is
solidly earthed in zero sequence (ext_grid x0/x = 1): Italian MV is compensated, so MV earth-fault
currents are overstated; LV results are unaffected.

Usage::

    net = load_network("hyllie", seed=3)    # == build_hyllie(seed=3); a scenario passes its own seed
    homes = net.load.meter_kind.notna()     # the 318 apartment meters
    fleet = hyllie_battery_fleet(net)       # the battery at "H0 LV busbar", as a BatteryFleet
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandapower as pp
import pandas as pd

from gridloop.grid_models.storage import BatteryFleet
from gridloop.grid_models.zero_sequence import add_zero_sequence_defaults

MV_CABLE = "NA2XS2Y 1x240 RM/25 12/20 kV"
TRUNK_CABLE = "NAYY 4x240 SE"
BRANCH_CABLE = "NAYY 4x150 SE"
TRAFO = "0.63 MVA 20/0.4 kV"
FUSE_KA = 0.315
MV_BREAKER_KA = 0.4
PEAK_FACTOR = 2.5  # typical evening demand over the annual mean
COS_PHI = 0.95
BATTERY_P_MW = 0.1
BATTERY_E_MWH = 0.2


def _empty(name: str) -> tuple[pp.pandapowerNet, int]:
    net = pp.create_empty_network(name=name)
    pp.create_std_type(
        net,
        {
            "c_nf_per_km": 270.0,
            "r_ohm_per_km": 0.125,
            "x_ohm_per_km": 0.08,
            "max_i_ka": 0.364,
            "type": "cs",
            "q_mm2": 240,
            "alpha": 0.00403,
            "voltage_rating": "LV",
        },
        TRUNK_CABLE,
        "line",
    )
    root = pp.create_bus(net, vn_kv=20.0, name="primary 20 kV", type="b")
    pp.create_ext_grid(net, root, vm_pu=1.0)
    net["meter_points"] = pd.DataFrame(columns=["name", "kind", "element", "index", "bus", "trafo"])
    return net, root


def _meter_point(
    net: pp.pandapowerNet, name: str, kind: str, element: str, index: int, bus: int, trafo: int = -1
) -> None:
    row = {"name": name, "kind": kind, "element": element, "index": int(index), "bus": int(bus), "trafo": int(trafo)}
    net["meter_points"] = pd.concat([net["meter_points"], pd.DataFrame([row])], ignore_index=True)


def _substation(net: pp.pandapowerNet, mv_bus: int, name: str) -> tuple[int, int]:
    """Transformer + LV busbar + substation meter; returns (trafo index, LV busbar)."""
    lv = pp.create_bus(net, vn_kv=0.4, name=f"{name} LV busbar", type="b")
    trafo = pp.create_transformer(net, mv_bus, lv, std_type=TRAFO, name=f"{name} trafo")
    _meter_point(net, f"{name} substation meter", "substation", "trafo", trafo, lv, trafo)
    return trafo, lv


def _feeder(
    net: pp.pandapowerNet, busbar: int, lengths_km: np.ndarray, feeder_id: int, name: str
) -> tuple[np.ndarray, int]:
    """Chain of buses off ``busbar`` with a fuse on the first line; returns (buses, first line)."""
    n = lengths_km.size
    buses = np.asarray(pp.create_buses(net, n, vn_kv=0.4, name=[f"{name} node {k}" for k in range(n)]))
    parents = np.concatenate([[busbar], buses[:-1]])
    cables = [TRUNK_CABLE] + [BRANCH_CABLE] * (n - 1)
    lines = np.asarray(pp.create_lines(net, parents, buses, lengths_km, std_type=cables))
    net.bus.loc[buses, "feeder"] = feeder_id
    net.line.loc[lines, "feeder"] = feeder_id
    pp.create_switch(net, busbar, int(lines[0]), et="l", closed=True, type="LBS", name=f"{name} fuse", in_ka=FUSE_KA)
    net.switch.loc[net.switch.index[-1], "protection"] = "fuse"
    # cable distribution cabinets: each later section can be disconnected at its upstream end (no protection),
    # the isolation points that fault isolation and service restoration switch
    for k, line in enumerate(lines[1:], start=1):
        pp.create_switch(net, int(parents[k]), int(line), et="l", closed=True, type="LBS",
                         name=f"{name} cabinet {k}")
    return buses, int(lines[0])


def _loads(
    net: pp.pandapowerNet,
    buses: np.ndarray,
    annual_kwh: np.ndarray,
    *,
    kind: str | None,
    phase: np.ndarray | int,
    gateway: np.ndarray | int = -1,
    sampling_s: np.ndarray | float = np.nan,
    names: list[str] | None = None,
) -> None:
    """Queue loads with their meter metadata; :func:`_finish` creates them all in one call."""
    n = np.asarray(buses).size
    spec = {
        "bus": np.asarray(buses, dtype=np.int64),
        "annual_kwh": np.asarray(annual_kwh, dtype=float),
        "meter_kind": np.full(n, kind, dtype=object),
        "phase": np.broadcast_to(phase, (n,)),
        "gateway": np.broadcast_to(gateway, (n,)),
        "sampling_s": np.broadcast_to(sampling_s, (n,)).astype(float),
        "name": np.asarray(names if names is not None else [None] * n, dtype=object),
    }
    net.setdefault("_load_specs", []).append(spec)


def _create_queued_loads(net: pp.pandapowerNet) -> None:
    specs = net.pop("_load_specs", [])
    cols = {k: np.concatenate([sp[k] for sp in specs]) for k in specs[0]} if specs else {}
    if not cols:
        return
    p = cols["annual_kwh"] / 8760.0 * PEAK_FACTOR / 1000.0
    idx = pp.create_loads(net, cols["bus"], p_mw=p, q_mvar=p * np.tan(np.arccos(COS_PHI)), name=list(cols["name"]))
    for col in ("meter_kind", "phase", "gateway", "annual_kwh", "sampling_s"):
        net.load.loc[idx, col] = cols[col]


def _finish(net: pp.pandapowerNet) -> pp.pandapowerNet:
    """Queued loads, column dtypes, -1 defaults, Dyn vector group and zero-sequence data."""
    _create_queued_loads(net)
    for table, col in (("bus", "feeder"), ("line", "feeder"), ("load", "phase"), ("load", "gateway")):
        net[table][col] = net[table][col].fillna(-1).astype(np.int64)
    net.load["meter_kind"] = net.load["meter_kind"].astype(object).where(net.load["meter_kind"].notna(), None)
    net.switch["protection"] = net.switch["protection"].astype(object).where(net.switch["protection"].notna(), None)
    mp = net["meter_points"]
    mp["index"] = mp["index"].astype(np.int64)
    mp["bus"] = mp["bus"].astype(np.int64)
    mp["trafo"] = mp["trafo"].astype(np.int64)
    net.trafo["vector_group"] = "Dyn"
    add_zero_sequence_defaults(net)
    return net


def build_hyllie(seed: int = 0, *, with_battery: bool = True) -> pp.pandapowerNet:
    """Hyllie (Malmö): 2 substations, 318 three-phase apartment meters in 20 meter blocks."""
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net, root = _empty("hyllie")
        blocks_per_feeder = np.array([[3, 2, 3, 2], [3, 3, 2, 2]])
        apartments = np.array_split(np.arange(318), int(blocks_per_feeder.sum()))
        mv_prev, block, feeder_id = root, 0, 0
        for s in range(2):
            mv = pp.create_bus(net, vn_kv=20.0, name=f"H{s} MV")
            pp.create_line(net, mv_prev, mv, rng.uniform(0.4, 0.9), std_type=MV_CABLE, name=f"H MV cable {s}")
            mv_prev = mv
            _, lv = _substation(net, mv, f"H{s}")
            for f, n_blocks in enumerate(blocks_per_feeder[s]):
                lengths = np.concatenate([[rng.uniform(0.08, 0.2)], rng.uniform(0.04, 0.08, n_blocks - 1)])
                buses, _ = _feeder(net, lv, lengths, feeder_id, f"H{s}F{f}")
                for b in buses:
                    flats = apartments[block]
                    _loads(
                        net,
                        np.full(flats.size, b),
                        rng.uniform(1500, 3500, flats.size),
                        kind="apartment",
                        phase=-1,
                        sampling_s=10.0,
                        names=[f"apartment {i}" for i in flats],
                    )
                    block += 1
                if f == 0:  # district-heating substation in the first building of each area
                    _meter_point(net, f"H{s} district heating", "district_heating", "bus", buses[0], buses[0])
                feeder_id += 1
            if with_battery and s == 0:
                _loads(net, np.array([lv]), np.zeros(1), kind=None, phase=-1, names=["battery"])
        return _finish(net)


def hyllie_battery_fleet(net: pp.pandapowerNet, soc_frac: float = 0.5) -> BatteryFleet:
    """The Hyllie battery (load named "battery", 100 kW / 200 kWh) as a BatteryFleet the engine can command."""
    pos = np.flatnonzero(net.load.name.astype(str).to_numpy() == "battery")
    if pos.size == 0:
        raise ValueError("net has no load named 'battery' (build_hyllie(with_battery=True))")
    return BatteryFleet(
        load_pos=pos,
        capacity_mwh=BATTERY_E_MWH,
        p_charge_max_mw=BATTERY_P_MW,
        p_discharge_max_mw=BATTERY_P_MW,
        soc_mwh=soc_frac * BATTERY_E_MWH,
    )


def build_turin(seed: int = 0) -> pp.pandapowerNet:
    """Turin: 6 substations on an open MV ring, 30 substation meters, Environment Park and homes."""
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net, root = _empty("turin")
        mv = _turin_mv_ring(net, root, rng)
        home_id, feeder_id = 0, 0
        for s in range(6):
            trafo, lv = _substation(net, int(mv[s]), f"T{s}")
            for f in range(4):
                home_id = _turin_feeder(net, s, f, lv, trafo, rng, home_id, feeder_id)
                feeder_id += 1
        return _finish(net)


def _turin_mv_ring(net: pp.pandapowerNet, root: int, rng: np.random.Generator) -> np.ndarray:
    """Six MV substations on a ring opened at one point, fed by breakers at both ends."""
    mv = np.asarray(pp.create_buses(net, 6, vn_kv=20.0, name=[f"T{s} MV" for s in range(6)]))
    ring = [root, mv[0], mv[1], mv[2], mv[3], mv[4], mv[5], root]
    mv_lines = [
        pp.create_line(net, a, b, rng.uniform(0.5, 1.2), std_type=MV_CABLE, name=f"T MV ring {k}")
        for k, (a, b) in enumerate(itertools.pairwise(ring))
    ]
    for line, bus in ((mv_lines[0], root), (mv_lines[-1], root)):
        pp.create_switch(net, bus, line, et="l", closed=True, type="CB", name="MV feeder breaker", in_ka=MV_BREAKER_KA)
        net.switch.loc[net.switch.index[-1], "protection"] = "breaker"
    pp.create_switch(net, mv[2], mv_lines[3], et="l", closed=False, type="LBS", name="MV ring open point")
    return mv


TURIN_PARK_SIZES = np.array([8, 8, 8] + [7] * 7)  # 73 meters on 10 gateways


def _turin_feeder(net: pp.pandapowerNet, s: int, f: int, lv: int, trafo: int, rng: np.random.Generator,
                  home_id: int, feeder_id: int) -> int:
    """Feeder f of substation s: Environment Park gateways (S0, S1), five homes (S2, S3) or background load;
    returns the next home number."""
    name = f"T{s}F{f}"
    if s < 2:  # Environment Park: gateway buildings (2nd gateway on feeders of S0)
        gws = [g for g in range(10) if g % 8 == s * 4 + f]
        lengths = np.concatenate([[rng.uniform(0.05, 0.15)], rng.uniform(0.03, 0.06, len(gws))])
    elif s < 4:  # residential: 5 homes in a row
        gws = []
        lengths = np.concatenate([[rng.uniform(0.08, 0.2)], rng.uniform(0.02, 0.04, 5)])
    else:
        gws = []
        lengths = np.array([rng.uniform(0.1, 0.25), rng.uniform(0.08, 0.15)])
    buses, first = _feeder(net, lv, lengths, feeder_id, name)
    _meter_point(net, f"{name} feeder meter", "substation", "line", first, lv, trafo)
    for k, g in enumerate(gws):
        n = int(TURIN_PARK_SIZES[g])
        _loads(net, np.full(n, buses[k + 1]), rng.uniform(3000, 15000, n), kind="park_1ph",
               phase=(np.arange(n) + g) % 3, gateway=g, sampling_s=1.0,
               names=[f"park gw{g} meter {i}" for i in range(n)])
    if 2 <= s < 4:
        ids = home_id + np.arange(5)
        _loads(net, buses[1:], rng.uniform(1800, 3600, 5), kind="residential", phase=ids % 3,
               sampling_s=np.where(ids % 4 == 0, 1.0, 900.0), names=[f"home {i}" for i in ids])
        for b, i in zip(buses[1:], ids, strict=True):
            if i % 6 == 0 and i < 42:  # 7 heat meters in homes' buildings
                _meter_point(net, f"home {i} district heating", "district_heating", "bus", b, b)
        home_id += 5
    if s < 4:
        _loads(net, buses[-1:], np.array([20.0 * 8760 / PEAK_FACTOR]), kind=None, phase=-1,
               names=[f"{name} background"])
    else:
        _loads(net, buses, np.full(buses.size, 40.0 * 8760 / PEAK_FACTOR), kind=None, phase=-1,
               names=[f"{name} background {k}" for k in range(buses.size)])
    return home_id
