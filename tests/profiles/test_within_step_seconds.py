"""The power of some homes second by second within a longer step (what 1 Hz meters see on 1-min grid steps)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gridloop.profiles import HouseholdFleet

START = pd.Timestamp("2026-01-15T18:00", tz="Europe/Stockholm")
HOMES = np.array([0, 3, 4, 11, 17, 29])


def test_seconds_within_a_minute_step_are_the_1s_fleet_exactly():
    """A 60-s fleet's per-second power of a subset equals what the same homes draw in a fleet stepped at 1 s."""
    fine = HouseholdFleet(30, START, step_s=1, seed=7)
    p1 = np.stack([fine.step()[0][HOMES] for _ in range(3600)], axis=1)  # (homes, seconds)
    coarse = HouseholdFleet(30, START, step_s=60, seed=7)
    parts = []
    for _ in range(60):
        coarse.step()
        parts.append(coarse.last_step_seconds(HOMES)[0])
    p60 = np.concatenate(parts, axis=1)
    assert np.array_equal(p60, p1)
    assert (np.abs(np.diff(p60, axis=1)) > 20).sum() > 100  # the evening switches appliances within the minutes


def test_mean_over_each_step_is_the_step_energy_across_blocks():
    """Over 8 h (two 6-h ledger blocks) each home's seconds average to its step's exact energy, P and Q."""
    fleet = HouseholdFleet(40, START - pd.Timedelta(hours=4), step_s=60, seed=3)
    for _ in range(8 * 60):
        _, q = fleet.step()
        sp, sq = fleet.last_step_seconds(HOMES)
        assert sp.shape == (HOMES.size, 60)
        assert np.array_equal(sp.sum(axis=1), fleet.last_energy_j()[HOMES])
        assert np.allclose(sq.mean(axis=1), q[HOMES], rtol=0, atol=1e-9)
