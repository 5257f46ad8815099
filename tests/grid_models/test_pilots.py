"""Pilot-like grids: meter counts and metadata as in the FLEXMETER report, fuses, and both backends solve."""

from __future__ import annotations

import numpy as np
import pandapower.topology as top
import pytest

from gridloop.grid_models.feeders import phase_split
from gridloop.grid_models.pandapower_solver import PandapowerSolver
from gridloop.grid_models.pgm_solver import PgmSolver
from gridloop.grid_models.pilots import build_hyllie, hyllie_battery_fleet

PILOTS = ["hyllie", "turin"]


def _kind(net) -> np.ndarray:
    return net.load.meter_kind.astype(object).fillna("").to_numpy().astype(str)


def test_hyllie_meters_and_blocks(get_net) -> None:
    net = get_net("hyllie")
    kind = _kind(net)
    apt = net.load[kind == "apartment"]
    assert len(apt) == 318 and (apt.phase == -1).all() and (apt.gateway == -1).all()
    assert (apt.annual_kwh.between(1000, 5000)).all()
    assert len(net.trafo) == 2
    # meter blocks: apartments share building buses; every feeder carries several blocks
    blocks = apt.bus.unique()
    assert 10 <= blocks.size <= 40
    per_feeder = net.bus.loc[blocks, "feeder"].value_counts()
    assert per_feeder.size == 8 and (per_feeder >= 2).all()
    mp = net["meter_points"]
    subs = mp[mp.kind == "substation"]
    assert sorted(subs["index"]) == sorted(net.trafo.index) and (subs.element == "trafo").all()
    assert (subs.bus.to_numpy() == net.trafo.loc[subs["index"], "lv_bus"].to_numpy()).all()
    heat = mp[mp.kind == "district_heating"]
    assert len(heat) == 2 and heat.bus.isin(net.bus.index).all()
    # the battery is a load, but not a meter (the engine treats loads with a meter_kind as homes)
    battery = net.load[net.load.name == "battery"]
    assert len(battery) == 1 and battery.meter_kind.isna().all()
    assert int(battery.bus.iloc[0]) in set(net.trafo.lv_bus)
    assert int(net.load.meter_kind.notna().sum()) == 318


def test_turin_meters_gateways_and_ring(get_net) -> None:
    net = get_net("turin")
    kind = _kind(net)
    assert len(net.trafo) == 6
    mp = net["meter_points"]
    sub = mp[mp.kind == "substation"]
    assert len(sub) == 30 and (sub.element == "trafo").sum() == 6
    assert (sub.groupby("trafo").size() == 5).all() and set(sub.trafo) == set(net.trafo.index)
    assert (sub.bus.to_numpy() == net.trafo.loc[sub.trafo, "lv_bus"].to_numpy()).all()
    heads = sub[sub.element == "line"]
    assert (net.line.loc[heads["index"], "from_bus"].to_numpy() == heads.bus.to_numpy()).all()
    assert (mp.kind == "district_heating").sum() == 7
    park = net.load[kind == "park_1ph"]
    assert len(park) == 73 and park.phase.isin([0, 1, 2]).all()
    assert sorted(park.gateway.unique()) == list(range(10))
    assert (park.groupby("gateway").bus.nunique() == 1).all()  # one concentrator per building
    assert set(park.phase) == {0, 1, 2}
    homes = net.load[kind == "residential"]
    assert len(homes) == 40 and homes.phase.isin([0, 1, 2]).all() and (homes.gateway == -1).all()
    one_hz = homes.sampling_s == 1.0
    assert 0 < one_hz.sum() < 40
    # open MV ring: exactly one normally-open switch, yet every bus is supplied
    assert (~net.switch.closed).sum() == 1
    assert len(top.unsupplied_buses(net)) == 0
    assert (net.switch.protection == "breaker").sum() == 2


@pytest.mark.parametrize("pilot", PILOTS)
def test_every_feeder_has_a_fuse_at_the_substation(get_net, pilot: str) -> None:
    net = get_net(pilot)
    busbars = set(net.trafo.lv_bus)
    first = net.line[net.line.from_bus.isin(busbars)]
    assert sorted(first.feeder) == sorted(net.line.feeder[net.line.feeder >= 0].unique())
    fuses = net.switch[net.switch.protection == "fuse"]
    assert len(fuses) == len(first)
    assert set(zip(fuses.element, fuses.bus, strict=True)) == set(zip(first.index, first.from_bus, strict=True))
    assert (fuses.et == "l").all() and fuses.closed.all() and (fuses.in_ka > 0).all()


@pytest.mark.parametrize("pilot", PILOTS)
def test_both_backends_solve_balanced_and_per_phase(get_net, pilot: str) -> None:
    net = get_net(pilot)
    for col in ("r0_ohm_per_km", "x0_ohm_per_km", "c0_nf_per_km"):
        assert net.line[col].notna().all()
    assert net.trafo.vk0_percent.notna().all() and (net.trafo.vector_group == "Dyn").all()
    p, q = net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy()
    bal = [PgmSolver(net), PandapowerSolver(net)]
    for s in bal:
        s.set_loads(p, q)
    a, b = (s.solve() for s in bal)
    np.testing.assert_allclose(a.bus_vm_pu, b.bus_vm_pu, atol=1e-6)
    assert a.bus_energized.all() and a.bus_vm_pu.min() > 0.9 and a.bus_vm_pu.max() < 1.1
    assert np.ptp(a.bus_vm_pu) > 5e-3  # the loads do load the grid
    p3, q3 = phase_split(net, p, q)
    ph = [PgmSolver(net, symmetric=False), PandapowerSolver(net, per_phase=True)]
    for s in ph:
        s.set_loads_phase(p3, q3)
    a3, b3 = (s.solve() for s in ph)
    np.testing.assert_allclose(a3.bus_vm_pu_phase, b3.bus_vm_pu_phase, atol=1e-4)
    assert a3.bus_vm_pu_phase.min() > 0.9 and a3.bus_vm_pu_phase.max() < 1.1
    np.testing.assert_allclose(a3.load_p_mw.sum(), p.sum(), rtol=1e-9)


def test_turin_single_phase_meters_unbalance_the_phases(get_net) -> None:
    net = get_net("turin")
    p, q = net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy()
    p3, _ = phase_split(net, p, q)
    single = net.load.phase.to_numpy() >= 0
    assert (np.count_nonzero(p3[single], axis=1) == 1).all()
    np.testing.assert_allclose(p3[~single], np.repeat(p[~single, None] / 3, 3, axis=1))
    solver = PgmSolver(net, symmetric=False)
    solver.set_loads_phase(p3 * 4, phase_split(net, p * 4, q * 4)[1])
    vm = solver.solve().bus_vm_pu_phase
    park_buses = net.bus.index.get_indexer(net.load.bus[net.load.meter_kind == "park_1ph"].unique())
    assert np.ptp(vm[park_buses], axis=1).max() > 1e-3


def test_load_network_returns_fresh_reproducible_pilots(get_net) -> None:
    a, b = get_net("hyllie"), build_hyllie()
    np.testing.assert_array_equal(a.line.length_km, b.line.length_km)
    np.testing.assert_array_equal(a.load.annual_kwh, b.load.annual_kwh)
    assert not np.array_equal(build_hyllie(seed=1).line.length_km, a.line.length_km)
    a.load["p_mw"] = 99.0
    assert (get_net("hyllie").load.p_mw < 1).all()


def test_hyllie_battery_moves_substation_load(get_net) -> None:
    net = get_net("hyllie")
    fleet = hyllie_battery_fleet(net)
    assert fleet.capacity_mwh[0] == pytest.approx(0.2) and fleet.p_charge_max_mw[0] == pytest.approx(0.1)
    p, q = net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy()
    solver = PgmSolver(net)
    solver.set_loads(p, q)
    base = solver.solve().trafo_loading_percent
    fleet.step(np.array([0.5]), dt_h=0.25)  # request above the limit: clipped to 100 kW
    assert fleet.p_mw[0] == pytest.approx(0.1)
    solver.set_loads(fleet.add_to_loads(p), q)
    charged = solver.solve().trafo_loading_percent
    trafo = net.trafo.index.get_indexer([net.trafo.index[net.trafo.lv_bus == net.load.bus[fleet.load_pos[0]]][0]])
    assert charged[trafo[0]] > base[trafo[0]] + 10.0  # 100 kW on a 630 kVA transformer
    np.testing.assert_allclose(np.delete(charged, trafo), np.delete(base, trafo), atol=0.5)
    with pytest.raises(ValueError, match="battery"):
        hyllie_battery_fleet(get_net("turin"))


@pytest.mark.parametrize("backend", [PgmSolver, PandapowerSolver])
def test_opening_a_feeder_fuse_deenergises_exactly_that_feeder(get_net, backend) -> None:
    net = get_net("turin")
    fuse = net.switch[net.switch.protection == "fuse"].iloc[5]
    feeder = int(net.line.at[int(fuse.element), "feeder"])
    solver = backend(net)
    solver.set_loads(net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy())
    solver.set_switch(int(fuse.name), False)
    state = solver.solve()
    np.testing.assert_array_equal(~state.bus_energized, net.bus.feeder.to_numpy() == feeder)
    lost = net.load.bus.map(net.bus.feeder).to_numpy() == feeder
    assert (state.load_p_mw[lost] == 0).all() and (state.load_p_mw[~lost] > 0).all()
