"""Determinism per seed and exact energy consistency across step lengths."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gridloop.profiles import HouseholdFleet

START = pd.Timestamp("2026-01-15T00:00", tz="Europe/Stockholm")


def _energy(step_s: int, seconds: int, n: int = 30, seed: int = 7, start: pd.Timestamp = START) -> np.ndarray:
    fleet = HouseholdFleet(n, start, step_s=step_s, seed=seed)
    e = np.zeros((seconds // step_s, n))
    for i in range(e.shape[0]):
        fleet.step()
        e[i] = fleet.last_energy_j()
    return e


def test_1s_energy_equals_15min_energy_exactly():
    e1 = _energy(1, 6 * 3600)  # 06:00 window includes fridge inrush, water heater, morning activity
    e900 = _energy(900, 6 * 3600)
    e60 = _energy(60, 6 * 3600)
    per15_from_1s = e1.reshape(-1, 900, e1.shape[1]).sum(axis=1)
    assert np.array_equal(per15_from_1s, e900)
    assert np.array_equal(e60.reshape(-1, 15, e60.shape[1]).sum(axis=1), e900)
    assert e900.sum() > 0


def test_odd_step_lengths_and_mean_power_agree():
    fleet_7 = HouseholdFleet(20, START, step_s=7, seed=1)
    fleet_63 = HouseholdFleet(20, START, step_s=63, seed=1)
    p7 = np.stack([fleet_7.step()[0] for _ in range(900)])
    p63 = np.stack([fleet_63.step()[0] for _ in range(100)])
    np.testing.assert_allclose(p7.reshape(100, 9, 20).mean(axis=1), p63, rtol=1e-12, atol=1e-9)


def test_same_seed_identical_different_seed_different():
    a = HouseholdFleet(50, START, step_s=60, seed=7).run(600)
    b = HouseholdFleet(50, START, step_s=60, seed=7).run(600)
    c = HouseholdFleet(50, START, step_s=60, seed=8).run(600)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_start_time_does_not_change_the_calendar_day():
    """Behaviour is keyed by (seed, date): starting at noon continues the same day as starting at midnight."""
    full = HouseholdFleet(40, START, step_s=300, seed=4).run(288)[0]
    noon = HouseholdFleet(40, START + pd.Timedelta(hours=12), step_s=300, seed=4).run(144)[0]
    assert np.array_equal(full[144:], noon)


def test_naive_datetime_start_and_step_shape():
    import datetime as dt

    fleet = HouseholdFleet(n_homes=10, start=dt.datetime(2026, 5, 1, 8, 0), step_s=900, seed=0)
    p, q = fleet.step()
    assert p.shape == (10,) and q.shape == (10,)
    assert fleet.time == pd.Timestamp("2026-05-01T08:15")


def test_block_length_changes_no_energy(monkeypatch):
    """Blocks are kept short so no one step carries a long block's work (a 100-substation run at 1 Hz was 2 s late
    at its first step); energies, flexible load and per-phase power are the same for any block length."""
    from gridloop.profiles import ledger

    def run() -> tuple[np.ndarray, ...]:
        fleet = HouseholdFleet(30, START + pd.Timedelta(hours=17), step_s=1, seed=5)
        out = []
        for _ in range(1800):  # half an hour at 1 s: several blocks of either length
            fleet.step()
            out.append((fleet.last_energy_j().copy(), fleet.last_flexible_w(), fleet.last_phase()[0].ravel()))
        return tuple(np.stack(col) for col in zip(*out, strict=True))

    short = run()
    assert HouseholdFleet(102, START, step_s=1, seed=5)._ledger.block_steps(1) <= 81
    monkeypatch.setattr(ledger, "BLOCK_MAX_STEPS", 5000)
    monkeypatch.setattr(ledger, "BLOCK_OPEN_CELLS", 1 << 30)
    assert HouseholdFleet(30, START, step_s=1, seed=5)._ledger.block_steps(1) > 1800  # one block for the whole run
    long = run()
    for a, b in zip(short, long, strict=True):
        assert np.array_equal(a, b)
    assert short[0].sum() > 0 and short[1].sum() > 0
