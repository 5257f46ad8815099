"""Heat, hot water, gas and tap water (issue #16): a year of heat against the BDEW standard heat load profile on
the same temperatures, summer against winter, occupancy-driven draws, determinism, and the meters' registers."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from gridloop.profiles.heat_check import (
    MIN_DAILY_CORR,
    MIN_WINTER_HOURLY_CORR,
    YearOfHeat,
    bdew_heat,
    correlations,
    year_of_heat,
)
from gridloop.profiles.heat_demand import BuildingHeat, DailyTemperature, TapWater, slot_of
from gridloop.profiles.heat_pump import OutdoorTemperature
from gridloop.profiles.utility_demand import UtilityMeterStage
from gridloop.scenario.model import UtilityMeters
from gridloop.stage import Clock


@pytest.fixture(scope="module")
def year() -> YearOfHeat:
    return year_of_heat(2026, n=30, seed=1)


@pytest.mark.parametrize("shlp_type", ["MFH", "EFH"])
def test_a_year_of_heat_follows_the_bdew_profile_on_the_same_temperatures(year: YearOfHeat, shlp_type: str) -> None:
    c = correlations(year, bdew_heat(year, shlp_type, building_class=1))
    assert c["daily"] >= MIN_DAILY_CORR, c
    assert c["winter_weekday_hourly"] >= MIN_WINTER_HOURLY_CORR, c


def test_summer_has_hot_water_with_morning_and_evening_peaks_but_little_space_heat(year: YearOfHeat) -> None:
    month = year.index.month
    jan, jul = month == 1, month == 7
    assert year.space_w[jul].mean() < 0.05 * year.space_w[jan].mean()
    # hot water all year, a little more in winter (colder mains water)
    assert 0.7 * year.water_w[jan].mean() < year.water_w[jul].mean() < year.water_w[jan].mean()
    weekday = jul & (year.index.weekday < 5)
    hw = pd.Series(year.water_w[weekday].sum(axis=1), index=year.index[weekday])
    by_hour = hw.groupby(hw.index.hour).mean().to_numpy()
    night, morning = by_hour[1:4].mean(), by_hour[6:9].max()
    midday, evening = by_hour[12:15].mean(), by_hour[18:22].max()
    assert morning > 1.5 * midday and evening > 1.2 * midday and min(morning, evening) > 2.0 * night
    weekend = jul & (year.index.weekday >= 5)
    we = pd.Series(year.water_w[weekend].sum(axis=1), index=year.index[weekend])
    assert np.argmax(we.groupby(we.index.hour).mean().to_numpy()[4:12]) > np.argmax(by_hour[4:12])  # later at weekends


def _heat(seed: int) -> BuildingHeat:
    outdoor = OutdoorTemperature(pd.Timestamp("2026-01-01", tz="Europe/Rome"), seed)
    return BuildingHeat(seed, 11, np.full(12, 40_000.0), DailyTemperature(outdoor), cooking=True)


def test_the_same_seed_gives_the_same_days_in_any_order() -> None:
    a, b, c = _heat(4), _heat(4), _heat(5)
    jan20, jan21 = pd.Timestamp("2026-01-20").toordinal(), pd.Timestamp("2026-01-21").toordinal()
    first = [x.copy() for x in a.tables(jan20)]
    b.tables(jan21)
    for x, y in zip(first, b.tables(jan20), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[1], c.tables(jan20)[1])
    assert (a.limit_c != c.limit_c).any() and np.ptp(a.limit_c) > 0.5  # buildings differ in their heating limit


def test_tap_water_follows_occupancy() -> None:
    taps = TapWater(2, 15, 400)
    day = pd.date_range("2026-03-03", periods=288, freq="5min", tz="Europe/Rome")
    act = np.array([taps.activity(*slot_of(t)) for t in day])  # (slots, households)
    assert 0.9 < act.mean() < 1.1
    hourly = act.mean(axis=1).reshape(24, 12).mean(axis=1)
    assert hourly[2:5].mean() < 0.2 * hourly[6:9].max() and hourly[19:22].mean() > hourly[2:5].mean() * 5


def _stage_day(date: str, period_s: int) -> UtilityMeterStage:
    st = UtilityMeterStage(UtilityMeters(heat_meters=7, water_meters=20, gas_meters=5), 3,
                           datetime.fromisoformat(date), period_s * 1000)
    for k in range(86400 // period_s):
        st.step(Clock(k * period_s * 1000, period_s * 1000), {})
    return st


def test_meter_stage_registers_follow_the_season_whatever_the_step() -> None:
    e0 = UtilityMeterStage(UtilityMeters(heat_meters=7, gas_meters=5), 3,
                           datetime.fromisoformat("2026-01-20T00:00:00+01:00"), 60_000)
    heat0, gas0 = e0.heat.energy_wh.copy(), e0.gas.volume_m3.copy()
    jan60, jan300 = _stage_day("2026-01-20T00:00:00+01:00", 60), _stage_day("2026-01-20T00:00:00+01:00", 300)
    jul = _stage_day("2026-07-20T00:00:00+02:00", 300)
    heat = {k: s.heat.energy_wh - heat0 for k, s in (("jan60", jan60), ("jan300", jan300), ("jul", jul))}
    np.testing.assert_allclose(heat["jan60"], heat["jan300"], rtol=0.01)  # same demand, any step
    assert (heat["jul"] < 0.2 * heat["jan60"]).all() and (heat["jul"] > 0).all()
    gas_jan, gas_jul = jan300.gas.volume_m3 - gas0, jul.gas.volume_m3 - gas0
    assert (gas_jul < 0.2 * gas_jan).all() and (gas_jul > 0.05).all()  # hot water and cooking all year
