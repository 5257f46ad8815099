"""BatteryFleet: power and energy limits, efficiency losses, and its effect on the grid."""

from __future__ import annotations

import numpy as np
import pytest

from gridloop.grid_models.pgm_solver import PgmSolver
from gridloop.grid_models.storage import BatteryFleet


def _fleet(**kw) -> BatteryFleet:
    args = dict(
        load_pos=[0, 1, 1],
        capacity_mwh=0.010,
        p_charge_max_mw=0.005,
        p_discharge_max_mw=0.004,
        soc_mwh=0.005,
        eta_charge=0.9,
        eta_discharge=0.8,
    )
    args.update(kw)
    return BatteryFleet(**args)


def test_power_limits_clip_requests() -> None:
    fleet = _fleet()
    p = fleet.step(np.array([1.0, -1.0, 0.002]), dt_h=1 / 60)
    np.testing.assert_allclose(p, [0.005, -0.004, 0.002])


def test_charging_stores_less_than_drawn_and_discharging_delivers_less_than_stored() -> None:
    fleet = _fleet(soc_mwh=[0.0, 0.010, 0.005])
    p = fleet.step(np.array([0.004, -0.004, 0.0]), dt_h=0.5)
    np.testing.assert_allclose(p, [0.004, -0.004, 0.0])
    np.testing.assert_allclose(fleet.soc_mwh, [0.004 * 0.5 * 0.9, 0.010 - 0.004 * 0.5 / 0.8, 0.005])


def test_energy_limits_stop_at_full_and_empty() -> None:
    fleet = _fleet(soc_mwh=[0.0095, 0.0005, 0.005], soc_min_frac=0.0, soc_max_frac=1.0)
    p = fleet.step(np.array([0.005, -0.004, 0.0]), dt_h=1.0)
    np.testing.assert_allclose(fleet.soc_mwh[:2], [0.010, 0.0], atol=1e-15)
    np.testing.assert_allclose(p[:2], [0.0005 / 0.9, -0.0005 * 0.8])
    p = fleet.step(np.array([0.005, -0.004, 0.0]), dt_h=1.0)  # nothing more possible
    np.testing.assert_allclose(p[:2], 0.0, atol=1e-15)


def test_soc_window_and_validation() -> None:
    fleet = _fleet(soc_mwh=0.0, soc_min_frac=0.2, soc_max_frac=0.9)
    np.testing.assert_allclose(fleet.soc_frac, 0.2)  # initial state clipped into the window
    for _ in range(200):
        fleet.step(np.full(3, 0.005), dt_h=0.25)
    np.testing.assert_allclose(fleet.soc_frac, 0.9)
    with pytest.raises(ValueError):
        _fleet(eta_charge=1.2)
    with pytest.raises(ValueError):
        fleet.step(np.zeros(3), dt_h=0.0)


def test_battery_power_is_added_as_load_and_moves_voltage(get_net) -> None:
    net = get_net("kerber_landnetz_kabel_1")
    n = len(net.load)
    fleet = BatteryFleet(
        load_pos=np.arange(n), capacity_mwh=0.02, p_charge_max_mw=0.01, p_discharge_max_mw=0.01, soc_mwh=0.01
    )
    base_p, base_q = net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy()
    solver = PgmSolver(net)
    v0 = solver.solve().bus_vm_pu.copy()
    fleet.step(fleet.self_consumption_request(base_p), dt_h=1 / 60)  # discharge to cover demand
    served = fleet.add_to_loads(base_p)
    np.testing.assert_allclose(served, np.maximum(base_p - 0.01, 0.0))
    solver.set_loads(served, base_q)
    v1 = solver.solve().bus_vm_pu
    lv = net.bus.vn_kv.to_numpy() < 1
    assert (v1[lv] > v0[lv]).all()
