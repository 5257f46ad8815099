"""1-minute statistics of single homes look like metered data, and P/Q/phase bookkeeping is consistent."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gridloop.profiles import HouseholdFleet, HouseholdParams


def test_lag1_autocorrelation(one_minute_week):
    p, _ = one_minute_week
    ac = [np.corrcoef(p[:-1, i], p[1:, i])[0, 1] for i in range(p.shape[1])]
    assert 0.90 <= np.median(ac) <= 0.99  # metered homes: 0.93-0.99


def test_share_of_minutes_without_change(one_minute_week):
    p, _ = one_minute_week
    d = np.abs(np.diff(p, axis=0))
    # drifting standby, electronics, cold appliances and cooking change most minutes (metered homes:
    # 15-30 % of minutes without change); the old staircase model had about 75 %
    per_home = (d < 1.0).mean(axis=0)
    assert 0.15 <= np.median(per_home) <= 0.30
    assert (per_home <= 0.5).all()
    assert (d < 5.0).mean() <= 0.5


def test_step_change_distribution_is_heavy_tailed(one_minute_week):
    p, _ = one_minute_week
    d = np.abs(np.diff(p, axis=0))
    changes = d[d >= 5.0]
    assert 0.003 <= (d > 1000.0).mean() <= 0.06
    assert np.median(changes) < 200.0  # most changes are small (cycles, lights)
    assert np.percentile(changes, 99) > 1500.0  # a few are kettles, hobs, heaters


def test_per_home_peak_to_mean(one_minute_week):
    p, _ = one_minute_week
    ratio = p.max(axis=0) / p.mean(axis=0)
    assert 5.0 <= np.median(ratio) <= 40.0
    assert p.max() < 15000.0 and p.min() >= 0.0


def test_reactive_power_and_power_factor(one_minute_week):
    p, q = one_minute_week
    pf = p.sum() / np.hypot(p, q).sum()
    assert 0.85 <= pf <= 0.98
    assert (q >= 0).all()


def test_phase_split_sums_to_total_and_single_phase_homes_use_one_phase():
    fleet = HouseholdFleet(200, pd.Timestamp("2026-02-02T17:00"), step_s=60, seed=9,
                           params=HouseholdParams(three_phase_share=0.5))
    for _ in range(90):
        p, q = fleet.step()
    p3, q3 = fleet.last_phase()
    assert p3.shape == (200, 3) and q3.shape == (200, 3)
    np.testing.assert_allclose(p3.sum(axis=1), p, atol=1e-9)
    np.testing.assert_allclose(q3.sum(axis=1), q, atol=1e-9)
    single = ~fleet.three_phase
    own = p3[single, fleet.phase[single]]
    np.testing.assert_allclose(own, p[single], atol=1e-9)
    assert set(np.unique(fleet.phase)) <= {0, 1, 2}
    # three-phase homes spread load over more than one phase
    assert (np.count_nonzero(p3[fleet.three_phase] > 1.0, axis=1) >= 2).mean() > 0.8
