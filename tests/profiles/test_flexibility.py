"""Curtailment of flexible loads: cap, energy-not-served accounting, and rebound on release."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gridloop.profiles import HouseholdFleet, HouseholdParams

START = pd.Timestamp("2026-01-20T06:00")
PARAMS = HouseholdParams(water_heater_share=0.6)


def _fleet() -> HouseholdFleet:
    return HouseholdFleet(300, START, step_s=60, seed=21, params=PARAMS)


def test_curtail_caps_flexible_load_and_counts_energy_not_served():
    base, cut = _fleet(), _fleet()
    mask = np.zeros(300, dtype=bool)
    mask[:150] = True
    cut.curtail(mask, limit_w=0.0)
    p0 = base.run(120)[0]
    p1 = cut.run(120)[0]
    diff_wh = (p0 - p1).sum(axis=0) / 60.0
    assert (p1 <= p0 + 1e-9).all()
    np.testing.assert_allclose(diff_wh[~mask], 0.0, atol=1e-9)
    assert diff_wh[mask].sum() > 100.0  # morning water heating and laundry were deferred
    np.testing.assert_allclose(cut.energy_not_served_wh, diff_wh, rtol=1e-9, atol=1e-6)


def test_release_rebounds_the_deferred_energy():
    base, cut = _fleet(), _fleet()
    mask = np.ones(300, dtype=bool)
    cut.curtail(mask, limit_w=500.0)
    pb = [base.run(120)[0]]
    pc = [cut.run(120)[0]]
    deferred = cut.energy_not_served_wh.sum()
    cut.release(mask, rebound_w=3000.0)
    pb.append(base.run(240)[0])
    pc.append(cut.run(240)[0])
    after_b, after_c = pb[1], pc[1]
    assert deferred > 0
    # rebound peak right after release, and the energy comes back
    assert after_c[:10].sum() > after_b[:10].sum() * 1.2
    total_b = sum(x.sum() for x in pb) / 60.0
    total_c = sum(x.sum() for x in pc) / 60.0
    assert abs(total_b - total_c) < 1e-6 * total_b
    assert cut.flex.backlog_j.sum() == 0.0


def test_flexible_load_is_reported_and_named():
    fleet = _fleet()
    flex = np.zeros(300)
    for _ in range(120):
        p, _ = fleet.step()
        f = fleet.last_flexible_w()
        assert (f <= p + 1e-9).all()
        flex += f
    assert flex.sum() > 0
    assert {"water_heater", "washing_machine", "dishwasher", "tumble_dryer", "ev"} == set(
        fleet.flexible_classes()
    )


def test_release_without_rebound_drops_energy():
    cut = _fleet()
    mask = np.ones(300, dtype=bool)
    cut.curtail(mask, limit_w=0.0)
    cut.run(60)
    cut.release(mask, rebound_w=0.0)
    assert cut.flex.backlog_j.sum() == 0.0
    assert cut.energy_not_served_wh.sum() > 0.0


def test_curtailed_phase_split_still_sums_to_total():
    cut = _fleet()
    cut.curtail(np.ones(300, dtype=bool), limit_w=100.0)
    for _ in range(30):
        p, q = cut.step()
        p3, q3 = cut.last_phase()
        np.testing.assert_allclose(p3.sum(axis=1), p, atol=1e-6)
        np.testing.assert_allclose(q3.sum(axis=1), q, atol=1e-6)
        assert p3.min() >= -1e-9  # the cut comes off loaded phases only
