"""Tap changers on both backends (same result, one step ≈ tap step size) and the dead-band controller."""

from __future__ import annotations

import numpy as np
import pytest

from gridloop.grid_models.feeders import phase_split
from gridloop.grid_models.pandapower_solver import PandapowerSolver
from gridloop.grid_models.pgm_solver import PgmSolver
from gridloop.grid_models.taps import TapController


@pytest.fixture(scope="module")
def hyllie(get_net):
    net = get_net("hyllie")
    return net, net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy()


def _solvers(net, per_phase: bool = False):
    if per_phase:
        return PgmSolver(net, symmetric=False), PandapowerSolver(net, per_phase=True)
    return PgmSolver(net), PandapowerSolver(net, tolerance_mva=1e-10)


def test_tap_step_moves_lv_voltage_by_step_size_and_backends_agree(hyllie) -> None:
    net, p, q = hyllie
    lv = net.bus.index.get_indexer(net.trafo.lv_bus)
    step = net.trafo.tap_step_percent.iloc[0] / 100.0
    pgm, ref = _solvers(net)
    before = []
    for s in (pgm, ref):
        s.set_loads(p, q)
        before.append(s.solve().bus_vm_pu)
        s.set_tap(int(net.trafo.index[0]), 1)  # HV-side tap up: LV voltage down
    after = [s.solve().bus_vm_pu for s in (pgm, ref)]
    for b, a in zip(before, after, strict=True):
        dv = a[lv] - b[lv]
        assert dv[0] == pytest.approx(-step, abs=0.15 * step)
        assert abs(dv[1]) < 1e-4  # the other substation is untouched
    np.testing.assert_allclose(after[0], after[1], rtol=0, atol=1e-6)
    for s in (pgm, ref):  # several positions, both transformers, and back to neutral
        s.set_tap(int(net.trafo.index[0]), -2)
        s.set_tap(int(net.trafo.index[1]), 2)
    a, b = pgm.solve().bus_vm_pu, ref.solve().bus_vm_pu
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert a[lv[0]] - before[0][lv[0]] == pytest.approx(2 * step, abs=0.3 * step)
    for s in (pgm, ref):
        s.set_tap(int(net.trafo.index[0]), 0)
        s.set_tap(int(net.trafo.index[1]), 0)
    np.testing.assert_allclose(pgm.solve().bus_vm_pu, before[0], atol=1e-9)
    np.testing.assert_allclose(ref.solve().bus_vm_pu, before[1], atol=1e-9)


def test_tap_change_per_phase_agrees(get_net) -> None:
    net = get_net("turin")
    p3, q3 = phase_split(net, net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy())
    pgm, ref = _solvers(net, per_phase=True)
    for s in (pgm, ref):
        s.set_loads_phase(p3, q3)
        s.set_tap(int(net.trafo.index[3]), -2)
    a, b = pgm.solve(), ref.solve()
    np.testing.assert_allclose(a.bus_vm_pu_phase, b.bus_vm_pu_phase, atol=1e-6)
    assert a.bus_vm_pu[net.bus.index.get_indexer([net.trafo.lv_bus.iloc[3]])[0]] > 1.03


@pytest.mark.parametrize("backend", [PgmSolver, PandapowerSolver])
def test_out_of_range_tap_raises_with_range(hyllie, backend) -> None:
    net, _, _ = hyllie
    solver = backend(net)
    with pytest.raises(ValueError, match=r"\[-2, 2\]"):
        solver.set_tap(int(net.trafo.index[0]), 3)
    with pytest.raises(KeyError):
        solver.set_tap(999, 0)


def test_controller_steps_once_per_call_into_the_dead_band(hyllie) -> None:
    net, p, q = hyllie
    solver = PgmSolver(net)
    solver.set_loads(p, q)
    ctrl = TapController.from_net(net, v_set_pu=1.03, deadband_pu=0.015)
    assert ctrl.trafo_index.size == 2 and (ctrl.raise_dir == -1).all()
    state = solver.solve()
    lv = ctrl.lv_bus_pos
    assert (state.bus_vm_pu[lv] < 1.015).all()
    change = ctrl.step(state, solver)
    np.testing.assert_array_equal(change, [-1, -1])  # one step each, towards a higher LV voltage
    assert solver.tap_position(int(net.trafo.index[0])) == -1
    state = solver.solve()
    assert (np.abs(state.bus_vm_pu[lv] - 1.03) <= 0.015).all()
    np.testing.assert_array_equal(ctrl.step(state, solver), [0, 0])  # inside the band: no hunting
    # an unreachable set point walks to the end of the range and stays there
    far = TapController.from_net(net, v_set_pu=1.3)
    for _ in range(4):
        far.step(solver.solve(), solver)
    np.testing.assert_array_equal(far.tap_pos, far.tap_min)
    np.testing.assert_array_equal(far.decide(solver.solve().bus_vm_pu), [0, 0])
    low = TapController.from_net(net, v_set_pu=0.9)
    np.testing.assert_array_equal(low.decide(solver.solve().bus_vm_pu), [1, 1])


def test_batch_solve_sees_a_pending_tap(hyllie) -> None:
    net, p, q = hyllie
    single, batch = PgmSolver(net), PgmSolver(net)
    for s in (single, batch):
        s.set_loads(p, q)
        s.set_tap(int(net.trafo.index[1]), -1)
    out = batch.solve_batch(np.stack([p, 0.5 * p]), np.stack([q, 0.5 * q]))
    np.testing.assert_allclose(out["bus_vm_pu"][0], single.solve().bus_vm_pu, atol=1e-12)
