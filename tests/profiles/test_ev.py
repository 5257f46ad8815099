"""Optional EV home charging: energy on top of the household target, evening sessions, curtailable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gridloop.profiles import HouseholdFleet, HouseholdParams

START = pd.Timestamp("2026-03-02", tz="Europe/Stockholm")


def _daily_kwh(params: HouseholdParams, days: int = 14) -> np.ndarray:
    p = HouseholdFleet(400, START, step_s=900, seed=6, params=params).run(96 * days)[0]
    return p.reshape(days, 96, -1)


def test_ev_energy_is_added_on_top_with_an_evening_peak():
    base = _daily_kwh(HouseholdParams())
    ev = _daily_kwh(HouseholdParams(ev_share=0.5, ev_kwh=2500.0))
    extra_kwh_per_home_day = (ev.mean() - base.mean()) * 24 / 1000
    assert extra_kwh_per_home_day == pytest.approx(0.5 * 2500 / 365.25, rel=0.15)
    diff_profile = ev.mean(axis=(0, 2)) - base.mean(axis=(0, 2))
    assert 16.0 <= diff_profile.argmax() / 4 <= 22.0


def test_ev_charging_is_curtailable():
    params = HouseholdParams(ev_share=1.0, water_heater_share=0.0)
    start = pd.Timestamp("2026-03-03T17:00", tz="Europe/Stockholm")
    free = HouseholdFleet(200, start, step_s=60, seed=2, params=params)
    capped = HouseholdFleet(200, start, step_s=60, seed=2, params=params)
    capped.curtail(np.ones(200, dtype=bool), limit_w=1400.0)
    p_free = free.run(180)[0]
    p_cap = capped.run(180)[0]
    assert p_free.max() > 3000.0
    assert capped.energy_not_served_wh.sum() > 5000.0  # several sessions deferred
    np.testing.assert_allclose((p_free - p_cap).sum() / 60, capped.energy_not_served_wh.sum(), rtol=1e-9)
