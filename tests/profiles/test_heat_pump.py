"""Heat pumps: colder weather, more electricity; the compressor cycles; deterministic per seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gridloop.profiles import HouseholdFleet, HouseholdParams
from gridloop.profiles.heat_pump import HeatPumps, OutdoorTemperature, cop


def test_cop_falls_with_outdoor_temperature():
    assert cop(-10) < cop(0) < cop(10)
    assert 2.0 < float(cop(-10)) < 2.6 and 4.0 < float(cop(10)) < 4.6


def test_outdoor_temperature_is_seasonal_and_seeded():
    jan = OutdoorTemperature(pd.Timestamp("2026-01-15", tz="Europe/Stockholm"), seed=1)
    jul = OutdoorTemperature(pd.Timestamp("2026-07-15", tz="Europe/Stockholm"), seed=1)
    jan_mean = np.mean([jan.at(h * 3600.0) for h in range(24 * 7)])
    jul_mean = np.mean([jul.at(h * 3600.0) for h in range(24 * 7)])
    assert jan_mean < 2 < 12 < jul_mean
    again = OutdoorTemperature(pd.Timestamp("2026-01-15", tz="Europe/Stockholm"), seed=1)
    assert [jan.at(t) for t in (0, 5000, 90000)] == [again.at(t) for t in (0, 5000, 90000)]


def _day_energy_kwh(start: str, seed: int = 3) -> np.ndarray:
    hp = HeatPumps(np.random.default_rng(seed), 300, 1.0, pd.Timestamp(start, tz="Europe/Stockholm"), seed)
    return sum(hp.step(t, 60.0) for t in np.arange(0, 86400, 60.0)) * 60 / 3.6e6


def test_colder_days_use_more_and_the_compressor_cycles():
    winter, spring = _day_energy_kwh("2026-01-15"), _day_energy_kwh("2026-04-20")
    assert winter.mean() > 1.5 * spring.mean() > 0
    assert 5 < winter.mean() < 60  # kWh/day for a home heated by an air-source heat pump in January
    hp = HeatPumps(np.random.default_rng(4), 200, 1.0, pd.Timestamp("2026-03-01", tz="Europe/Stockholm"), 4)
    on = np.array([hp.step(t, 60.0) > 0 for t in np.arange(0, 86400, 60.0)])
    switches = np.abs(np.diff(on.astype(int), axis=0)).sum(axis=0)
    assert 0.05 < on.mean() < 0.95 and np.median(switches) >= 4  # on/off cycling, not a flat draw


def test_fleet_adds_heat_pumps_for_its_share_only():
    start = pd.Timestamp("2026-01-15", tz="Europe/Stockholm")
    base = HouseholdFleet(200, start, 60, seed=9, params=HouseholdParams())
    with_hp = HouseholdFleet(200, start, 60, seed=9, params=HouseholdParams(heat_pump_share=0.5))
    p0, _ = base.run(240)
    p1, _ = with_hp.run(240)
    has = with_hp.heat_pump.has
    assert 0.35 < has.mean() < 0.65
    assert np.allclose(p1[:, ~has], p0[:, ~has])
    assert (p1[:, has].sum(axis=0) > p0[:, has].sum(axis=0)).all()
    p3, _ = with_hp.last_phase()
    assert np.allclose(p3.sum(axis=1), p1[-1])


def test_pv_works_with_a_fixed_utc_offset_start():
    """Scenario start times carry offsets like +02:00, not zone names; PV must still know the sun."""
    fleet = HouseholdFleet(20, pd.Timestamp("2026-06-15T12:00:00+02:00"), 60, seed=1,
                           params=HouseholdParams(pv_share=1.0))
    fleet.step()
    assert (fleet.last_pv_w() > 0).all()
