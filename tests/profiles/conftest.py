"""Shared fleet runs for the profile validation tests (computed once per session)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gridloop.profiles import HouseholdFleet, HouseholdParams

TZ = "Europe/Stockholm"


@pytest.fixture(scope="session")
def year_sample() -> tuple[pd.DatetimeIndex, np.ndarray]:
    """500 homes, 25 days spread over the year (every 15th day: all seasons and weekdays), 15 min."""
    dates = pd.date_range("2026-01-04", periods=25, freq="15D", tz=TZ)
    days = []
    for d in dates:
        fleet = HouseholdFleet(n_homes=500, start=d, step_s=900, seed=11, params=HouseholdParams())
        days.append(fleet.run(96)[0])
    return dates, np.stack(days)  # (days, 96, homes)


@pytest.fixture(scope="session")
def winter_fortnight() -> np.ndarray:
    """1,000 homes over two winter weeks at 15 min, as (steps, homes) active power."""
    fleet = HouseholdFleet(n_homes=1000, start=pd.Timestamp("2026-01-12", tz=TZ), step_s=900, seed=5)
    return fleet.run(96 * 14)[0]


@pytest.fixture(scope="session")
def one_minute_week() -> tuple[np.ndarray, np.ndarray]:
    """100 homes for a week at 1 min (early spring)."""
    fleet = HouseholdFleet(n_homes=100, start=pd.Timestamp("2026-03-02", tz=TZ), step_s=60, seed=3)
    return fleet.run(1440 * 7)
