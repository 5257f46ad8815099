"""Annual energy, daily shape against BDEW H0, winter evening peak and ADMD of the household model."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from gridloop.profiles import HouseholdFleet, HouseholdParams


def test_annual_energy_within_5_percent_of_target(year_sample):
    _, p = year_sample
    annual_kwh = p.mean() * 8766 / 1000
    assert annual_kwh == pytest.approx(2700.0, rel=0.05)


def test_annual_target_is_a_parameter():
    """A Swedish-apartment class at 2,000 kWh/yr comes out near 2,000 kWh/yr (sample of 12 days)."""
    params = HouseholdParams(annual_kwh=2000.0, size_probs=(0.45, 0.33, 0.11, 0.08, 0.03), water_heater_share=0.0)
    energy = []
    for d in pd.date_range("2026-01-07", periods=12, freq="31D"):
        energy.append(HouseholdFleet(600, d, step_s=900, seed=2, params=params).run(96)[0].mean())
    assert np.mean(energy) * 8.766 == pytest.approx(2000.0, rel=0.07)


def test_homes_differ_from_each_other(year_sample):
    _, p = year_sample
    per_home = p.mean(axis=(0, 1))
    cv = per_home.std() / per_home.mean()
    assert 0.25 < cv < 0.8  # BDEW H0 has none; real populations show CV ~0.4-0.6


def test_mean_daily_shape_correlates_with_bdew_h0(year_sample):
    from demandlib import bdew

    _, p = year_sample
    h0 = bdew.ElecSlp(2026).get_profiles("h0")["h0"]
    h0_day = h0.groupby([h0.index.hour, h0.index.minute]).mean().to_numpy()
    ours = p.mean(axis=(0, 2))
    assert np.corrcoef(ours, h0_day)[0, 1] >= 0.9


def test_winter_evening_peak_between_1800_and_2030(winter_fortnight):
    p = winter_fortnight.reshape(14, 96, -1)
    weekdays = [i for i in range(14) if (pd.Timestamp("2026-01-12") + pd.Timedelta(days=i)).weekday() < 5]
    profile = p[weekdays].mean(axis=(0, 2))
    peak_h = profile.argmax() * 0.25
    assert 18.0 <= peak_h <= 20.5, peak_h


def _admd_kw(p: np.ndarray, n: int) -> float:
    """After-diversity maximum demand per home of disjoint groups of n homes (mean over groups)."""
    groups = p.shape[1] // n
    g = p[:, : groups * n].reshape(p.shape[0], groups, n).mean(axis=2)
    return float(g.max(axis=0).mean() / 1000.0)


@pytest.mark.parametrize("step_min", [15, 30])
def test_admd_falls_with_group_size_and_is_realistic(winter_fortnight, step_min):
    k = step_min // 15
    p = winter_fortnight.reshape(-1, k, winter_fortnight.shape[1]).mean(axis=1)
    sizes = [1, 5, 20, 100, 500, 1000]
    admd = [_admd_kw(p, n) for n in sizes]
    assert all(a > b for a, b in itertools.pairwise(admd)), admd
    for n, a in zip(sizes, admd, strict=True):
        if n >= 100:
            assert 0.5 <= a <= 2.0, (n, a)
    assert admd[0] > 2.0 * admd[-1]  # diversity matters
