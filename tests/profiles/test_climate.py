"""A household class carries its climate: the Italian preset's buildings and heat pumps see Rome's winters."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from gridloop.profiles.fleet import HouseholdFleet
from gridloop.profiles.heat_demand import BuildingHeat, DailyTemperature
from gridloop.profiles.heat_pump import OutdoorTemperature
from gridloop.profiles.params import ITALIAN_FAMILY, HouseholdParams

START = pd.Timestamp("2026-01-01")


def _monthly_mean_c(household: HouseholdParams, month: int) -> float:
    outdoor = OutdoorTemperature.of(household, START, seed=3)
    days = pd.date_range(START, periods=365, freq="D")
    t = outdoor.series(np.arange(365 * 24) * 3600.0).reshape(365, 24).mean(axis=1)
    return float(t[days.month == month].mean())


def test_each_preset_has_its_own_seasons():
    stockholm = (_monthly_mean_c(HouseholdParams(), 1), _monthly_mean_c(HouseholdParams(), 7))
    rome = (_monthly_mean_c(ITALIAN_FAMILY, 1), _monthly_mean_c(ITALIAN_FAMILY, 7))
    assert -6.0 < stockholm[0] < 0.0 and 14.0 < stockholm[1] < 20.0, stockholm
    assert 4.0 < rome[0] < 11.0 and 21.0 < rome[1] < 28.0, rome


def test_a_warmer_climate_needs_less_heat_in_january():
    def january_heat_kwh(household: HouseholdParams) -> float:
        heat = BuildingHeat(1, 11, np.full(10, 40_000.0), DailyTemperature(OutdoorTemperature.of(household, START, 1)))
        watt_slots = sum(float(space.sum() + water.sum())
                         for space, water in (heat.tables(START.toordinal() + d) for d in range(31)))
        return watt_slots * 300 / 3.6e6  # 5-minute slots, W -> kWh

    assert january_heat_kwh(ITALIAN_FAMILY) < 0.7 * january_heat_kwh(HouseholdParams())


def test_heat_pumps_follow_the_preset_climate():
    used = {}
    for name, household in (("stockholm", HouseholdParams(heat_pump_share=1.0)),
                            ("rome", replace(ITALIAN_FAMILY, heat_pump_share=1.0))):
        fleet = HouseholdFleet(200, START, step_s=900, seed=2, params=household)
        kwh = 0.0
        for _ in range(7 * 96):  # the first week of January
            fleet.step()
            kwh += float(fleet.last_heat_pump_w().sum()) * 0.25 / 1000
        used[name] = kwh
    assert used["rome"] < 0.7 * used["stockholm"], used
