"""make_solver and the GridSolver contract details shared by both backends."""

from __future__ import annotations

import numpy as np
import pytest

from gridloop.grid_models.pandapower_solver import PandapowerSolver
from gridloop.grid_models.pgm_solver import PgmSolver
from gridloop.grid_models.solvers import make_solver
from gridloop.grid_models.zero_sequence import add_zero_sequence_defaults


@pytest.mark.parametrize(("backend", "cls"), [("pgm", PgmSolver), ("pandapower", PandapowerSolver)])
@pytest.mark.parametrize("per_phase", [False, True])
def test_make_solver_builds_working_backend(get_net, backend: str, cls: type, per_phase: bool) -> None:
    net = add_zero_sequence_defaults(get_net("kerber_landnetz_kabel_1"))
    solver = make_solver(net, backend, per_phase=per_phase)
    assert isinstance(solver, cls)
    np.testing.assert_array_equal(solver.bus_vn_kv, net.bus.vn_kv.to_numpy())
    state = solver.solve()
    assert state.bus_energized.all()
    assert state.bus_vm_pu.shape == (len(net.bus),)
    assert state.line_loading_percent.shape == (len(net.line),)
    assert state.trafo_loading_percent.shape == (len(net.trafo),)
    assert (state.bus_vm_pu_phase is not None) == per_phase
    np.testing.assert_allclose(state.load_p_mw, net.load.p_mw.to_numpy(), rtol=1e-12)


def test_make_solver_rejects_unknown_backend(get_net) -> None:
    with pytest.raises(ValueError, match="backend"):
        make_solver(get_net("cigre_lv"), "matpower")  # type: ignore[arg-type]


def test_phase_loads_need_per_phase_solver(get_net) -> None:
    net = get_net("cigre_lv")
    p = np.zeros((len(net.load), 3))
    for solver in (PgmSolver(net), PandapowerSolver(net)):
        with pytest.raises(ValueError, match="set_loads_phase needs"):
            solver.set_loads_phase(p, p)


def test_solvers_leave_input_net_untouched(get_net) -> None:
    net = get_net("cigre_lv")
    before = net.load.p_mw.copy()
    for solver in (PgmSolver(net), PandapowerSolver(net)):
        solver.set_loads(before.to_numpy() * 3, net.load.q_mvar.to_numpy())
        solver.set_switch(int(net.switch.index[0]), False)
        solver.solve()
    np.testing.assert_array_equal(net.load.p_mw, before)
    assert net.switch.closed.all()
    assert net.res_bus.empty


def test_heavier_load_lowers_voltage(get_net) -> None:
    net = get_net("kerber_landnetz_kabel_1")
    solver = PgmSolver(net)
    p, q = net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy()
    light = solver.solve().bus_vm_pu.copy()
    solver.set_loads(p * 3, q * 3)
    heavy = solver.solve().bus_vm_pu
    lv = net.bus.vn_kv.to_numpy() < 1
    assert (heavy[lv] < light[lv]).all()


def test_unsupported_elements_are_refused(get_net) -> None:
    import pandapower as pp

    net = get_net("cigre_lv")
    pp.create_shunt(net, bus=int(net.bus.index[2]), q_mvar=0.01)
    with pytest.raises(NotImplementedError, match="shunt"):
        PgmSolver(net)


@pytest.mark.parametrize("symmetric", [True, False])
def test_solve_batch_matches_step_by_step(get_net, symmetric: bool) -> None:
    net = add_zero_sequence_defaults(get_net("1-LV-rural1--0-sw"))
    rng = np.random.default_rng(5)
    f = rng.uniform(0.2, 2.0, size=(6, len(net.load)))
    p, q = net.load.p_mw.to_numpy() * f, net.load.q_mvar.to_numpy() * f
    solver = PgmSolver(net, symmetric=symmetric)
    switch = int(net.switch.index[(net.switch.et == "l")][3])
    solver.set_switch(switch, False)  # batch must use the current topology
    batch = solver.solve_batch(p, q)
    assert batch["bus_vm_pu"].shape == (6, len(net.bus))
    assert not batch["bus_energized"].all()
    for t in range(6):
        solver.set_loads(p[t], q[t])
        state = solver.solve()
        np.testing.assert_allclose(batch["bus_vm_pu"][t], state.bus_vm_pu, atol=1e-12)
        np.testing.assert_array_equal(batch["bus_energized"][t], state.bus_energized)
        np.testing.assert_allclose(batch["line_loading_percent"][t], state.line_loading_percent, atol=1e-9)
        np.testing.assert_allclose(batch["trafo_loading_percent"][t], state.trafo_loading_percent, atol=1e-9)
        if not symmetric:
            np.testing.assert_allclose(batch["bus_vm_pu_phase"][t], state.bus_vm_pu_phase, atol=1e-12)


def test_transformer_power_agrees_between_backends_and_balances_the_loads(get_net):
    """What a substation meter reads: the power into the LV grid, the same in both backends."""
    from gridloop.grid_models.solvers import make_solver

    net = get_net("1-LV-rural1--0-sw")
    net.sgen["in_service"] = False
    p = net.load.p_mw.to_numpy(dtype=float)
    q = net.load.q_mvar.to_numpy(dtype=float)
    states = []
    for backend in ("pgm", "pandapower"):
        solver = make_solver(net, backend)
        solver.set_loads(p, q)
        states.append(solver.solve())
    pgm, ref = states
    assert pgm.trafo_p_mw is not None and ref.trafo_p_mw is not None
    assert abs(pgm.trafo_p_mw - ref.trafo_p_mw).max() < 1e-6
    assert abs(pgm.trafo_q_mvar - ref.trafo_q_mvar).max() < 1e-6
    # supplies the loads plus the (small, positive) line losses
    losses = pgm.trafo_p_mw.sum() - p.sum()
    assert 0 < losses < 0.05 * p.sum()
