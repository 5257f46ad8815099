"""power-grid-model and pandapower must give the same power flow, balanced and per phase."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandapower as pp
import pytest

from gridloop.grid_models.pandapower_solver import PandapowerSolver
from gridloop.grid_models.pgm_solver import PgmSolver
from gridloop.grid_models.zero_sequence import add_zero_sequence_defaults

GRIDS = ["1-LV-rural1--0-sw", "kerber_landnetz_kabel_1", "cigre_lv", "cigre_mv", "1-MV-rural--0-sw"]


def _random_loads(net: pp.pandapowerNet, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    f = rng.uniform(0.0, 2.5, len(net.load))
    return net.load.p_mw.to_numpy() * f, net.load.q_mvar.to_numpy() * f


@pytest.mark.parametrize("trafo_model", ["t", "pi"])
@pytest.mark.parametrize("grid", GRIDS)
def test_balanced_voltages_agree(get_net, grid: str, trafo_model: str) -> None:
    net = get_net(grid)
    pgm = PgmSolver(net, trafo_model=trafo_model)
    ref = PandapowerSolver(net, trafo_model=trafo_model, tolerance_mva=1e-10)
    rng = np.random.default_rng(7)
    for _ in range(3):  # several steps: exercises the recycled pandapower path too
        p, q = _random_loads(net, rng)
        for s in (pgm, ref):
            s.set_loads(p, q)
        a, b = pgm.solve(), ref.solve()
        assert b.bus_energized.all() and a.bus_energized.all()
        assert np.ptp(b.bus_vm_pu) > 1e-3  # loads actually move voltages
        np.testing.assert_allclose(a.bus_vm_pu, b.bus_vm_pu, rtol=0, atol=1e-6)
        np.testing.assert_allclose(a.line_loading_percent, b.line_loading_percent, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(a.trafo_loading_percent, b.trafo_loading_percent, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(a.load_p_mw, p * net.load.scaling.to_numpy(), rtol=1e-12)


def test_recycled_pandapower_matches_fresh_runpp(get_net) -> None:
    net = get_net("1-LV-urban6--0-sw")
    solver = PandapowerSolver(net)
    rng = np.random.default_rng(3)
    for _ in range(3):
        p, q = _random_loads(net, rng)
        solver.set_loads(p, q)
        state = solver.solve()
    fresh = copy.deepcopy(net)
    fresh.load["p_mw"], fresh.load["q_mvar"] = p, q
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(fresh, numba=False)
    np.testing.assert_allclose(state.bus_vm_pu, fresh.res_bus.vm_pu.to_numpy(), atol=1e-9)
    pgm = PgmSolver(net)
    pgm.set_loads(p, q)
    np.testing.assert_allclose(pgm.solve().bus_vm_pu, state.bus_vm_pu, atol=1e-6)


def test_sgen_updates_agree(get_net) -> None:
    net = get_net("1-LV-rural1--0-sw")
    assert len(net.sgen) > 0
    pgm, ref = PgmSolver(net), PandapowerSolver(net)
    p = np.full(len(net.sgen), 0.03)
    q = -0.1 * p
    for s in (pgm, ref):
        s.set_sgens(p, q)
        s.set_loads(np.zeros(len(net.load)), np.zeros(len(net.load)))
    a, b = pgm.solve(), ref.solve()
    assert b.bus_vm_pu.max() > net.ext_grid.vm_pu.iloc[0] + 2e-3  # feed-in raises voltages
    np.testing.assert_allclose(a.bus_vm_pu, b.bus_vm_pu, atol=1e-6)


def test_fast_and_public_pgm_paths_identical(get_net) -> None:
    net = get_net("cigre_lv")
    fast, public = PgmSolver(net), PgmSolver(net, fast=False)
    assert fast._fast is not None and public._fast is None
    rng = np.random.default_rng(1)
    for _ in range(3):
        p, q = _random_loads(net, rng)
        for s in (fast, public):
            s.set_loads(p, q)
        a, b = fast.solve(), public.solve()
        np.testing.assert_array_equal(a.bus_vm_pu, b.bus_vm_pu)
        np.testing.assert_array_equal(a.line_loading_percent, b.line_loading_percent)


@pytest.fixture(scope="module")
def unbalanced_case(get_net):
    """Kerber Landnetz with full zero-sequence data and single-phase loads spread over L1..L3."""
    net = add_zero_sequence_defaults(get_net("kerber_landnetz_kabel_1"))
    n = len(net.load)
    p = np.zeros((n, 3))
    q = np.zeros((n, 3))
    phase = np.array([0, 0, 0, 1, 1, 2, 0, 0][:n])  # skewed towards L1
    p[np.arange(n), phase] = 0.010
    q[np.arange(n), phase] = 0.002
    return net, p, q


def test_per_phase_agrees_with_runpp_3ph(unbalanced_case) -> None:
    net, p, q = unbalanced_case
    pgm, ref = PgmSolver(net, symmetric=False), PandapowerSolver(net, per_phase=True)
    for s in (pgm, ref):
        s.set_loads_phase(p, q)
    a, b = pgm.solve(), ref.solve()
    assert a.bus_vm_pu_phase.shape == (len(net.bus), 3)
    spread = b.bus_vm_pu_phase.max(axis=1) - b.bus_vm_pu_phase.min(axis=1)
    assert spread.max() > 0.02  # genuinely unbalanced
    np.testing.assert_allclose(a.bus_vm_pu_phase, b.bus_vm_pu_phase, rtol=0, atol=1e-4)
    np.testing.assert_allclose(a.bus_vm_pu, b.bus_vm_pu, rtol=0, atol=1e-4)
    np.testing.assert_allclose(a.line_loading_percent, b.line_loading_percent, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(a.load_p_mw, p.sum(axis=1), rtol=1e-12)


def test_zero_sequence_magnetising_data_matters(unbalanced_case) -> None:
    """Guard that the zero-sequence transformer recipe matters: ignoring it must be visibly worse."""
    net, p, q = unbalanced_case
    crude = copy.deepcopy(net)
    crude.trafo["mag0_percent"] = 1e6  # pandapower then sees almost no magnetising shunt
    pgm, ref = PgmSolver(crude, symmetric=False), PandapowerSolver(net, per_phase=True)
    for s in (pgm, ref):
        s.set_loads_phase(p, q)
    err = np.abs(pgm.solve().bus_vm_pu_phase - ref.solve().bus_vm_pu_phase).max()
    assert err > 1e-4


def test_per_phase_balanced_loads_match_symmetric(get_net) -> None:
    net = add_zero_sequence_defaults(get_net("1-LV-rural1--0-sw"))
    sym, asym = PgmSolver(net), PgmSolver(net, symmetric=False)
    p, q = net.load.p_mw.to_numpy() * 2, net.load.q_mvar.to_numpy() * 2
    for s in (sym, asym):
        s.set_loads(p, q)
    a, b = sym.solve(), asym.solve()
    np.testing.assert_allclose(b.bus_vm_pu, a.bus_vm_pu, atol=1e-8)
    np.testing.assert_allclose(b.bus_vm_pu_phase, np.repeat(a.bus_vm_pu[:, None], 3, axis=1), atol=1e-8)


@pytest.mark.parametrize("tap_side", ["hv", "lv"])
def test_transformer_taps_agree(get_net, tap_side: str) -> None:
    net = get_net("1-MV-rural--0-sw")
    net.trafo["tap_changer_type"] = "Ratio"
    net.trafo["tap_side"] = tap_side
    net.trafo["tap_pos"] = net.trafo["tap_neutral"] + 3
    untapped = PandapowerSolver(get_net("1-MV-rural--0-sw")).solve()
    a, b = PgmSolver(net).solve(), PandapowerSolver(net, tolerance_mva=1e-10).solve()
    assert np.abs(b.bus_vm_pu - untapped.bus_vm_pu).max() > 0.02  # the tap really acts
    np.testing.assert_allclose(a.bus_vm_pu, b.bus_vm_pu, atol=1e-6)


def test_per_phase_simbench_with_sgens_and_open_switch(get_net) -> None:
    """SimBench sgens have type 'PV'; runpp_3ph skips such sgens unless mirrored, so this guards that."""
    net = add_zero_sequence_defaults(get_net("1-LV-rural1--0-sw"))
    pgm, ref = PgmSolver(net, symmetric=False), PandapowerSolver(net, per_phase=True)
    gen = np.full(len(net.sgen), 0.03)
    switch = int(net.switch.index[(net.switch.et == "l") & (net.switch.bus == net.trafo.lv_bus.iloc[0])][0])
    for s in (pgm, ref):
        s.set_sgens(gen, np.zeros_like(gen))
        s.set_loads(0.2 * net.load.p_mw.to_numpy(), 0.2 * net.load.q_mvar.to_numpy())
    a, b = pgm.solve(), ref.solve()
    assert b.bus_vm_pu.max() > net.ext_grid.vm_pu.iloc[0] + 1e-3
    np.testing.assert_allclose(a.bus_vm_pu_phase, b.bus_vm_pu_phase, atol=1e-4)
    for s in (pgm, ref):
        s.set_switch(switch, False)
    a, b = pgm.solve(), ref.solve()
    assert not b.bus_energized.all()
    np.testing.assert_array_equal(a.bus_energized, b.bus_energized)
    assert (b.bus_vm_pu_phase[~b.bus_energized] == 0).all()
    np.testing.assert_allclose(a.bus_vm_pu_phase, b.bus_vm_pu_phase, atol=1e-4)
