"""Seeded feeder generator: reproducible, right sizes, phase skew, and solvable by both backends."""

from __future__ import annotations

import numpy as np
import pandapower.topology as top
import pytest

from gridloop.grid_models.feeders import generate_district, generate_feeders, phase_probabilities, phase_split
from gridloop.grid_models.pandapower_solver import PandapowerSolver
from gridloop.grid_models.pgm_solver import PgmSolver


def test_same_seed_same_grid_other_seed_differs() -> None:
    a = generate_feeders(3, 10, seed=4)
    b = generate_feeders(3, 10, seed=4)
    c = generate_feeders(3, 10, seed=5)
    np.testing.assert_array_equal(a.line.length_km, b.line.length_km)
    np.testing.assert_array_equal(a.load.phase, b.load.phase)
    assert not np.array_equal(a.line.length_km, c.line.length_km)


def test_sizes_and_radial_structure() -> None:
    net = generate_feeders(4, 12, seed=1)
    assert len(net.load) == 48 and len(net.bus) == 1 + 2 + 48
    assert len(net.line) == 48 + 1  # a tree: one cable per home plus the MV cable
    assert len(top.unsupplied_buses(net)) == 0
    net2 = generate_district(3, 2, 5, seed=0)
    assert len(net2.bus) == 1 + 3 * (2 + 10) and len(net2.trafo) == 3


def test_phase_skew() -> None:
    np.testing.assert_allclose(phase_probabilities(0.0), [1 / 3] * 3)
    np.testing.assert_allclose(phase_probabilities(1.0), [1, 0, 0])
    with pytest.raises(ValueError):
        phase_probabilities(1.5)
    uniform = np.bincount(generate_feeders(10, 30, seed=2, phase_skew=0.0).load.phase, minlength=3)
    skewed = np.bincount(generate_feeders(10, 30, seed=2, phase_skew=0.8).load.phase, minlength=3)
    assert uniform.max() - uniform.min() < 40
    assert skewed[0] > 2 * skewed[1:].max()
    assert (generate_feeders(2, 10, seed=2, phase_skew=1.0).load.phase == 0).all()


def test_skewed_homes_depress_l1_and_backends_agree() -> None:
    net = generate_feeders(2, 15, seed=3, phase_skew=1.0, home_p_mw=0.004)
    p3, q3 = phase_split(net, net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy())
    np.testing.assert_allclose(p3.sum(axis=1), net.load.p_mw.to_numpy())
    assert (p3[:, 1:] == 0).all()
    pgm, ref = PgmSolver(net, symmetric=False), PandapowerSolver(net, per_phase=True)
    for s in (pgm, ref):
        s.set_loads_phase(p3, q3)
    a, b = pgm.solve(), ref.solve()
    lv = net.bus.vn_kv.to_numpy() < 1
    assert (a.bus_vm_pu_phase[lv, 0] < a.bus_vm_pu_phase[lv, 1]).all()
    np.testing.assert_allclose(a.bus_vm_pu_phase, b.bus_vm_pu_phase, atol=1e-4)
