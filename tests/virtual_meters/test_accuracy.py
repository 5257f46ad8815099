"""Accuracy classes, resolution and meter clocks: limits hold over many meters, drift accumulates as specified."""

from __future__ import annotations

import numpy as np
import pytest

from gridloop.virtual_meters.accuracy import (
    ACCURACY_CLASSES,
    MeasurementError,
    MeterClock,
    Register,
    accuracy_class,
    draw_gain,
    quantise,
    truncate,
)

N = 200_000


@pytest.mark.parametrize("name", ["1", "2", "A", "B", "C", "R2", "R3"])
def test_fixed_error_stays_inside_the_class_limit_over_many_meters(name: str) -> None:
    limit = ACCURACY_CLASSES[name].limit_pct / 100.0
    gain = draw_gain(N, name, np.random.default_rng(3))
    err = gain - 1.0
    assert np.abs(err).max() < limit
    assert np.abs(err).max() > 0.9 * limit  # the tail reaches towards the limit: not a degenerate draw
    assert abs(err.mean()) < 0.01 * limit
    assert err.std() == pytest.approx(0.4 * limit, rel=0.05)


def test_class_names_follow_the_standards() -> None:
    assert accuracy_class("1").limit_pct == 1.0 and accuracy_class("2").limit_pct == 2.0
    assert [accuracy_class(c).limit_pct for c in "ABC"] == [2.0, 1.0, 0.5]
    assert accuracy_class(ACCURACY_CLASSES["B"]) is ACCURACY_CLASSES["B"]
    with pytest.raises(ValueError, match="unknown accuracy class"):
        accuracy_class("0.2S")


def test_instantaneous_values_carry_gain_and_small_noise_registers_only_gain() -> None:
    rng = np.random.default_rng(5)
    err = MeasurementError.draw(1000, "A", rng)
    p = np.full((1000, 3), 1000.0)
    assert np.array_equal(err.systematic(p), p * err.gain[:, None])
    samples = np.stack([err.instantaneous(p, rng) for _ in range(200)])  # (200, n, 3)
    rel = samples / (p * err.gain[:, None]) - 1.0
    assert rel.mean() == pytest.approx(0.0, abs=1e-4)
    assert rel.std() == pytest.approx(ACCURACY_CLASSES["A"].noise_pct / 100.0, rel=0.05)
    exact = MeasurementError.exact(4)
    assert np.array_equal(exact.instantaneous(np.arange(4.0), rng), np.arange(4.0))


def test_draws_are_deterministic_per_seed() -> None:
    a = MeasurementError.draw(100, "B", np.random.default_rng(11))
    b = MeasurementError.draw(100, "B", np.random.default_rng(11))
    c = MeasurementError.draw(100, "B", np.random.default_rng(12))
    assert np.array_equal(a.gain, b.gain) and not np.array_equal(a.gain, c.gain)
    ca = MeterClock.draw(100, np.random.default_rng(11), sync_ms=0)
    cb = MeterClock.draw(100, np.random.default_rng(11), sync_ms=0)
    assert np.array_equal(ca.read(86_400_000), cb.read(86_400_000))


def test_quantise_rounds_and_truncate_never_runs_ahead() -> None:
    x = np.array([231.24, 231.25001, -0.04, 1523340.5999, 0.3])
    assert quantise(x, 0.1).tolist() == [231.2, 231.3, 0.0, 1523340.6, 0.3]
    assert repr(quantise(np.array([-0.01]), 0.1).tolist()[0]) == "0.0"  # no "-0.0" in payloads
    assert truncate(x[3:], 0.1).tolist() == [1523340.5, 0.3]
    assert quantise(np.array([0.87349]), 0.001).tolist() == [0.873]
    assert truncate(np.array([999.99, 1000.0]), 1000.0).tolist() == [0.0, 1000.0]


def test_register_is_monotone_and_within_one_resolution_step_of_the_integral() -> None:
    rng = np.random.default_rng(8)
    reg = Register(500, resolution=0.1, initial=rng.uniform(0, 1e6, 500))
    exact = reg.value.copy()
    shown = reg.display()
    for _ in range(300):
        amount = rng.exponential(0.05, 500) * (rng.random(500) < 0.7)
        reg.add(amount)
        reg.add(-amount)  # negative amounts are ignored
        exact += amount
        now = reg.display()
        assert (now >= shown).all()
        assert ((exact - now) > -1e-6).all() and ((exact - now) < 0.1 + 1e-6).all()
        shown = now


def test_clock_drift_accumulates_as_specified() -> None:
    t0 = 1_767_225_600_000  # 2026-01-01T00:00Z
    clock = MeterClock(offset_ms=np.array([0.0, 250.0, -100.0]), drift_ppm=np.array([20.0, -20.0, 0.0]),
                       sync_ms=np.full(3, float(t0)))
    day = 86_400_000
    assert (clock.read(t0) - t0).tolist() == [0, 250, -100]
    # 20 ppm is 1.728 s a day, and it keeps growing linearly
    assert (clock.read(t0 + day) - (t0 + day)).tolist() == [1728, 250 - 1728, -100]
    assert (clock.read(t0 + 10 * day) - (t0 + 10 * day)).tolist() == [17280, 250 - 17280, -100]
    clock.synchronise(t0 + 10 * day, mask=np.array([True, False, False]))
    assert (clock.read(t0 + 11 * day) - (t0 + 11 * day)).tolist() == [1728, 250 - 11 * 1728, -100]
    picked = clock.read(np.array([t0, t0 + day]), meters=np.array([0, 1]))
    assert picked.tolist() == [t0 - 10 * 1728, t0 + day + 250 - 1728]


def test_drawn_clocks_stay_within_their_drift_limit() -> None:
    rng = np.random.default_rng(2)
    clock = MeterClock.draw(N, rng, sync_ms=0, drift_ppm_limit=20.0, offset_ms_sigma=0.0)
    err = clock.read(86_400_000) - 86_400_000
    assert np.abs(err).max() <= 1728
    assert np.abs(err).max() > 1700
    assert MeterClock.ideal(3).read(5).tolist() == [5, 5, 5]
