"""Electricity meter bank and real-time lag accounting."""

from __future__ import annotations

import numpy as np

from gridloop.contract.quantities import VOLTAGE, Quantity
from gridloop.engine.step_loop import Pacer
from gridloop.virtual_meters.electricity import ElectricityMeterBank


def test_registers_follow_integrated_power():
    rng = np.random.default_rng(0)
    bank = ElectricityMeterBank(["a", "b", "c"], np.array([0, 1, 1]), 900.0, initial_wh=np.array([10.0, 0.0, 5.0]))
    powers = rng.normal(500.0, 800.0, size=(96, 3))  # some steps export (negative)
    for p in powers:
        bank.integrate(p, 60.0)
    expected_import = np.array([10.0, 0.0, 5.0]) + np.clip(powers, 0, None).sum(axis=0) / 60.0
    expected_export = np.clip(-powers, 0, None).sum(axis=0) / 60.0
    sample = bank.sample(1_000, np.array([400.0, 380.0]), powers[-1])
    assert np.allclose(sample.quantities[Quantity.ENERGY_ACTIVE_IMPORT], expected_import, atol=0.05)  # 0.1 Wh
    assert np.allclose(sample.quantities[Quantity.ENERGY_ACTIVE_EXPORT], expected_export, atol=0.05)
    assert np.allclose(sample.quantities[VOLTAGE[0]], [230.9, 219.4, 219.4])
    assert sample.seq.tolist() == [1, 1, 1]
    assert bank.sample(2_000, np.array([400.0, 0.0]), np.zeros(3)).quantities[VOLTAGE[2]].tolist() == [230.9, 0, 0]


def test_meters_sample_on_clock_aligned_instants():
    bank = ElectricityMeterBank(["a"], np.array([0]), 300.0, initial_wh=np.zeros(1))
    assert [t for t in range(0, 1200, 60) if bank.due(t)] == [0, 300, 600, 900]


def test_pacer_counts_late_steps():
    now = [0.0]
    pacer = Pacer(speed=100.0, tolerance_s=0.02, now=lambda: now[0], sleep=lambda d: now.__setitem__(0, now[0] + d))
    pacer.wait(0.0)
    now[0] += 0.05
    pacer.wait(1.0)  # due 10 ms after start, came 50 ms after: 40 ms late
    pacer.wait(100.0)  # due 1 s after start: it waits, not late
    assert pacer.late_steps == 1
    assert abs(pacer.max_lag_s - 0.04) < 1e-9
    assert abs(now[0] - 1.0) < 1e-9
