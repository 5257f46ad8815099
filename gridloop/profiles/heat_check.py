"""Heat demand of a year against the BDEW standard heat load profile (demandlib) on the same temperatures.

Used by tests/profiles/test_heat_demand.py and the "Heat, water and gas" figure of docs/profiles.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridloop.profiles.heat_demand import BuildingHeat, DailyTemperature
from gridloop.profiles.heat_pump import OutdoorTemperature

MIN_DAILY_CORR = 0.95
MIN_WINTER_HOURLY_CORR = 0.9


@dataclass
class YearOfHeat:
    """Hourly mean demand of a year: space and hot water per building (hours, n), temperature (hours,)."""

    index: pd.DatetimeIndex
    space_w: np.ndarray
    water_w: np.ndarray
    temperature_c: np.ndarray

    @property
    def total_w(self) -> np.ndarray:
        return self.space_w + self.water_w


def year_of_heat(year: int = 2026, n: int = 30, seed: int = 1, design_kw: float = 60.0) -> YearOfHeat:
    """A year of hourly heat demand of n buildings (design power seeded around ``design_kw``)."""
    start = pd.Timestamp(f"{year}-01-01")
    index = pd.date_range(start, f"{year}-12-31 23:00", freq="h")
    outdoor = OutdoorTemperature(start, seed)
    rng = np.random.default_rng([seed, 5])
    heat = BuildingHeat(seed, 11, rng.uniform(0.6, 1.4, n) * design_kw * 1000.0, DailyTemperature(outdoor))
    days = pd.date_range(start, periods=len(index) // 24, freq="D")
    space, water = np.empty((len(days), 24, n)), np.empty((len(days), 24, n))
    for d, day in enumerate(days):  # each hour's mean over its twelve 5-minute slots
        s, w = heat.tables(day.toordinal())
        space[d] = s.reshape(n, 24, -1).mean(axis=2).T
        water[d] = w.reshape(n, 24, -1).mean(axis=2).T
    space, water = space.reshape(-1, n), water.reshape(-1, n)
    temperature = outdoor.series((index - start).total_seconds().to_numpy())
    return YearOfHeat(index, space, water, temperature)


def bdew_heat(y: YearOfHeat, shlp_type: str = "MFH", building_class: int = 1) -> pd.Series:
    """demandlib's BDEW profile (hot water included) for the same hours, temperatures and annual energy."""
    from demandlib import bdew

    annual_kwh = float(y.total_w.sum(axis=1).sum() / 1000.0)
    b = bdew.HeatBuilding(y.index, temperature=pd.Series(y.temperature_c, index=y.index), shlp_type=shlp_type,
                          building_class=building_class, wind_class=0, annual_heat_demand=annual_kwh,
                          name=shlp_type, ww_incl=True)
    return b.get_bdew_profile().astype(float)


def correlations(y: YearOfHeat, ref: pd.Series) -> dict[str, float]:
    """Correlation with the reference of daily energies over the year and of the mean winter-weekday hour shape."""
    ours = pd.Series(y.total_w.sum(axis=1) / 1000.0, index=y.index)
    ref = pd.Series(np.asarray(ref, dtype=float), index=y.index)
    daily = float(np.corrcoef(ours.resample("D").sum(), ref.resample("D").sum())[0, 1])
    winter = y.index.month.isin([12, 1, 2]) & (y.index.weekday < 5)
    mine = ours[winter].groupby(ours[winter].index.hour).mean()
    theirs = ref[winter].groupby(ref[winter].index.hour).mean()
    return {"daily": daily, "winter_weekday_hourly": float(np.corrcoef(mine, theirs)[0, 1])}
