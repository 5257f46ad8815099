"""Heat, water and gas meters: registers agree with integrated flow, noise stays off the registers."""

from __future__ import annotations

import numpy as np
import pytest

from gridloop.virtual_meters.utility_meters import (
    CP_WATER_J_KGK,
    RHO_WATER_KG_M3,
    GasMeterParams,
    GasMeters,
    HeatMeterParams,
    HeatMeters,
    WaterMeterParams,
    WaterMeters,
)

HEAT_QUANTITIES = {
    "heating.energy",
    "heating.volume",
    "heating.flowrate",
    "heating.power",
    "heating.temp.primary.inlet",
    "heating.temp.primary.outlet",
}


def heat_demand(rng: np.random.Generator, n: int, steps: int) -> np.ndarray:
    """Space heating plus hot-water peaks, W, (steps, n)."""
    base = 20_000.0 + 10_000.0 * np.sin(np.linspace(0, 2 * np.pi, steps))[:, None]
    return np.maximum(base + 8_000.0 * rng.standard_normal((steps, n)), 0.0)


def test_heat_meter_reports_every_contract_quantity_consistently() -> None:
    rng = np.random.default_rng(31)
    n, steps, dt = 7, 288, 300.0  # Turin's 7 district-heating meters, one day of 5-minute data
    meters = HeatMeters(n, design_power_w=60_000.0, rng=rng, initial_energy_wh=5.0e6)
    demand = heat_demand(rng, n, steps)
    out = [meters.step(dt, demand[k]) for k in range(steps)]
    assert set(out[0]) == HEAT_QUANTITIES
    for r in out:
        dtk = r["heating.temp.primary.inlet"] - r["heating.temp.primary.outlet"]
        q = RHO_WATER_KG_M3 * CP_WATER_J_KGK * r["heating.flowrate"] / 3600.0 * dtk
        np.testing.assert_allclose(r["heating.power"], q, rtol=1e-12)
        assert (dtk > 10).all() and (r["heating.flowrate"] >= 0).all()

    energy = np.array([r["heating.energy"] for r in out])
    volume = np.array([r["heating.volume"] for r in out])
    assert (np.diff(energy, axis=0) >= 0).all() and (np.diff(volume, axis=0) >= 0).all()
    true_energy = 5.0e6 + demand.sum(axis=0) * dt / 3600.0
    assert (energy[-1] <= true_energy).all() and (true_energy - energy[-1] < 1000.0).all()  # 1 kWh digits
    # volume register = integral of the true flow, within its 10 l resolution
    p = HeatMeterParams()
    load = np.clip(demand / 60_000.0, 0, 1)
    dt_true = p.delta_t_min_k + (p.delta_t_design_k - p.delta_t_min_k) * load
    true_volume = (demand / (RHO_WATER_KG_M3 * CP_WATER_J_KGK * dt_true)).sum(axis=0) * dt
    assert (true_volume - volume[-1] >= 0).all() and (true_volume - volume[-1] < 0.01 + 1e-9).all()
    # the reported (noisy) power averages to the energy register's increase
    reported_wh = np.array([r["heating.power"] for r in out]).sum(axis=0) * dt / 3600.0
    np.testing.assert_allclose(reported_wh, energy[-1] - 5.0e6, rtol=0.01, atol=1000.0)


def test_heat_registers_match_energy_volume_relation_at_constant_load() -> None:
    meters = HeatMeters(3, design_power_w=40_000.0, rng=np.random.default_rng(32))
    for _ in range(24 * 12):
        r = meters.step(300.0, np.full(3, 40_000.0))  # design load: delta T = 35 K
    e_from_volume = RHO_WATER_KG_M3 * CP_WATER_J_KGK * 35.0 * meters.volume_m3 / 3600.0
    np.testing.assert_allclose(meters.energy_wh, e_from_volume, rtol=1e-9)
    assert r["heating.energy"] == pytest.approx(np.full(3, 960_000.0))  # 40 kW x 24 h


def test_noise_stays_off_the_registers() -> None:
    demand = heat_demand(np.random.default_rng(33), 4, 100)
    a = HeatMeters(4, 50_000.0, np.random.default_rng(1))
    b = HeatMeters(4, 50_000.0, np.random.default_rng(2))
    ra = [a.step(60.0, d) for d in demand]
    rb = [b.step(60.0, d) for d in demand]
    for x, y in zip(ra, rb, strict=True):
        np.testing.assert_array_equal(x["heating.energy"], y["heating.energy"])
        np.testing.assert_array_equal(x["heating.volume"], y["heating.volume"])
    flow_a = np.array([r["heating.flowrate"] for r in ra])
    flow_b = np.array([r["heating.flowrate"] for r in rb])
    flowing = (flow_a + flow_b) > 0
    rel = (flow_a - flow_b)[flowing] / ((flow_a + flow_b)[flowing] / 2)
    assert 0.005 < np.std(rel) < 0.03  # two class-2 sensors disagree by ~1.4 % (1 sigma)


def test_water_meter_volume_follows_the_draws() -> None:
    rng = np.random.default_rng(34)
    n, dt, days = 20, 30.0, 3
    meters = WaterMeters(n, rng, initial_volume_m3=123.456)
    flows, volumes = [], []
    for _ in range(int(days * 86_400 / dt)):
        r = meters.step(dt)
        flows.append(r["water.flowrate"])
        volumes.append(r["water.volume"])
    flows_a, volumes_a = np.array(flows), np.array(volumes)
    assert (np.diff(volumes_a, axis=0) >= 0).all()
    daily_m3 = (meters.volume_m3 - 123.456) / days
    p = WaterMeterParams()
    expected = p.draws_per_hour * 24 * p.mean_draw_s / 3600 * (p.flow_min_m3h + p.flow_max_m3h) / 2
    np.testing.assert_allclose(daily_m3.mean(), expected, rtol=0.15)
    # register vs the integrated reported flowrate: equal up to 2 % sensor noise and 1 l digits
    integrated = 123.456 + flows_a.sum(axis=0) * dt / 3600
    np.testing.assert_allclose(volumes_a[-1], integrated, rtol=0.01, atol=0.002)
    drawing = (flows_a > 0).mean()
    assert 0.01 < drawing < 0.06  # taps run a few percent of the time


def test_water_meter_with_given_flow_integrates_exactly() -> None:
    meters = WaterMeters(2, np.random.default_rng(35))
    for _ in range(360):
        r = meters.step(10.0, flow_m3h=np.array([0.6, 0.0]))
    np.testing.assert_allclose(r["water.volume"], [0.6, 0.0], atol=0.001 + 1e-12)
    assert r["water.flowrate"][1] == 0.0


def test_gas_meter_volume_is_energy_over_calorific_value() -> None:
    meters = GasMeters(3, initial_volume_m3=np.array([0.0, 10.0, 1000.0]))
    readings = [meters.step(60.0, np.array([0.0, 2_000.0, 24_000.0]))["gas.volume"] for _ in range(1440)]
    vol = np.array(readings)
    assert (np.diff(vol, axis=0) >= 0).all()
    cv = GasMeterParams().calorific_value_wh_m3
    want = np.array([0.0, 10.0 + 48_000.0 / cv, 1000.0 + 576_000.0 / cv])
    assert (want - vol[-1] >= -1e-9).all() and (want - vol[-1] < 0.001).all()
