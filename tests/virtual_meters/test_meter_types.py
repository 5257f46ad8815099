"""Substation, single-phase, 1 Hz home and blink meters: registers, derived values, pulses, tamper, encoding."""

from __future__ import annotations

import math

import numpy as np
import orjson

from gridloop.contract.quantities import CURRENT, POWER_ACTIVE, POWER_FACTOR, POWER_REACTIVE, VOLTAGE
from gridloop.contract.quantities import Quantity as Q
from gridloop.virtual_meters.accuracy import MeterClock
from gridloop.virtual_meters.electricity import MeterSample
from gridloop.virtual_meters.envelopes import split_finite
from gridloop.virtual_meters.envelopes_fixed_width import encode_envelopes
from gridloop.virtual_meters.meter_types.bank import ClockedSample, Resolution
from gridloop.virtual_meters.meter_types.blink import BlinkDetector
from gridloop.virtual_meters.meter_types.home_1hz import HomeMeter1Hz
from gridloop.virtual_meters.meter_types.single_phase import SinglePhaseMeterBank
from gridloop.virtual_meters.meter_types.substation import SubstationMeterBank

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
RES = Resolution()


def ids(n: int, prefix: str = "m") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


def check_register(shown: np.ndarray, exact: np.ndarray, resolution: float) -> None:
    """Shown register never ahead of the exact integral and less than one resolution step behind."""
    behind = exact - shown
    assert (behind > -1e-6).all() and (behind < resolution + 1e-6).all(), (behind.min(), behind.max())


def check_derived(v: np.ndarray, i: np.ndarray, p: np.ndarray, q: np.ndarray, pf: np.ndarray,
                  current_res: float) -> None:
    """Reported current and PF agree with reported V, P, Q up to what their rounding allows."""
    s = np.hypot(p, q)
    tol_i = current_res / 2 + (0.05 * math.sqrt(2) + i * 0.05) / v + 1e-9
    assert (np.abs(i - s / v) <= tol_i).all()
    loaded = s > 50.0
    tol_pf = 0.0005 + 0.13 / s[loaded] + 1e-9
    assert (np.abs(pf[loaded] - p[loaded] / s[loaded]) <= tol_pf).all()
    assert np.allclose(pf[s == 0.0], 1.0)


def test_substation_registers_follow_the_gain_affected_integral_and_values_are_consistent() -> None:
    rng = np.random.default_rng(21)
    n, steps, dt = 300, 360, 10.0  # one hour of Hyllie's 10-second readings
    init = rng.uniform(0, 2e6, n)
    bank = SubstationMeterBank(ids(n), dt, rng, accuracy="C", initial_import_wh=init,
                               clock=MeterClock.draw(n, rng, sync_ms=T0))
    exact = {Q.ENERGY_ACTIVE_IMPORT: init.copy(), Q.ENERGY_ACTIVE_EXPORT: np.zeros(n),
             Q.ENERGY_REACTIVE_IMPORT: np.zeros(n), Q.ENERGY_REACTIVE_EXPORT: np.zeros(n)}
    prev = None
    for k in range(steps):
        v = 230.0 + 8.0 * rng.standard_normal((n, 3))
        p = rng.uniform(-4000.0, 12000.0, (n, 3))  # import and PV export
        q = rng.uniform(-2000.0, 2000.0, (n, 3))
        if k % 50 == 0:
            p[: n // 10], q[: n // 10] = 0.0, 0.0  # no load
        bank.integrate(p, q, dt)
        e = bank.active_error.gain * p.sum(axis=1) * dt / 3600.0
        r = bank.reactive_error.gain * q.sum(axis=1) * dt / 3600.0
        exact[Q.ENERGY_ACTIVE_IMPORT] += np.clip(e, 0, None)
        exact[Q.ENERGY_ACTIVE_EXPORT] += np.clip(-e, 0, None)
        exact[Q.ENERGY_REACTIVE_IMPORT] += np.clip(r, 0, None)
        exact[Q.ENERGY_REACTIVE_EXPORT] += np.clip(-r, 0, None)
        s = bank.sample(T0 + int((k + 1) * dt * 1000), v, p, q, frequency_hz=50.0 + 0.05 * rng.standard_normal())
        qs = s.quantities
        for name, value in exact.items():
            check_register(qs[name], value, 0.1)
            if prev is not None:
                assert (qs[name] >= prev[name]).all()
        vr, ir, pr, qr, pfr = (np.stack([qs[k] for k in names], axis=1)
                               for names in (VOLTAGE, CURRENT, POWER_ACTIVE, POWER_REACTIVE, POWER_FACTOR))
        check_derived(vr, ir, pr, qr, pfr, RES.current_a)
        assert np.abs(qs[Q.POWER_ACTIVE_TOTAL] - pr.sum(axis=1)).max() <= 0.2 + 1e-9
        assert np.abs(qs[Q.POWER_REACTIVE_TOTAL] - qr.sum(axis=1)).max() <= 0.2 + 1e-9
        # instantaneous P within class C (0.5 %) plus noise and rounding of the true value
        assert (np.abs(pr - p) <= 0.006 * np.abs(p) + 0.06).all()
        assert np.abs(qs[Q.FREQUENCY] - 50.0).max() < 0.5
        prev = qs
    assert set(qs) >= {Q.ENERGY_ACTIVE_IMPORT, Q.ENERGY_ACTIVE_EXPORT, Q.ENERGY_REACTIVE_IMPORT,
                       Q.ENERGY_REACTIVE_EXPORT, Q.FREQUENCY, Q.POWER_ACTIVE_TOTAL, Q.POWER_REACTIVE_TOTAL,
                       *VOLTAGE, *CURRENT, *POWER_ACTIVE, *POWER_REACTIVE, *POWER_FACTOR}
    assert isinstance(s, MeterSample) and s.seq.tolist() == [steps] * n
    assert np.array_equal(s.meter_ts_ms, bank.clock.read(s.ts_ms))


def test_same_seed_same_readings() -> None:
    def run(seed: int) -> list[bytes]:
        rng = np.random.default_rng(seed)
        bank = SubstationMeterBank(ids(50), 10.0, rng, clock=MeterClock.draw(50, rng, sync_ms=T0))
        load = np.random.default_rng(0)
        out = []
        for k in range(5):
            p, q = load.uniform(0, 3000, (50, 3)), load.uniform(-300, 300, (50, 3))
            bank.integrate(p, q, 10.0)
            out += encode_envelopes(bank.sample(T0 + 10_000 * k, np.full((50, 3), 230.0), p, q), 20)
        return out

    assert run(4) == run(4)
    assert run(4) != run(5)


def test_single_phase_meters_report_only_their_phase() -> None:
    rng = np.random.default_rng(9)
    n, steps, dt = 73, 600, 1.0  # Turin's 73 ST meters at 1 Hz
    phase = rng.integers(0, 3, n)
    bank = SinglePhaseMeterBank(ids(n, "to-"), phase, dt, rng)
    exact_imp, exact_exp = np.zeros(n), np.zeros(n)
    for k in range(steps):
        v = 230.0 + 5.0 * rng.standard_normal(n)
        p = rng.uniform(-1500.0, 3000.0, n)
        q = rng.uniform(-500.0, 500.0, n)
        s = bank.sample(T0 + 1000 * k, v, p, q)
        bank.integrate(p, dt)
        check_register(s.quantities[Q.ENERGY_ACTIVE_IMPORT], exact_imp, 0.1)
        check_register(s.quantities[Q.ENERGY_ACTIVE_EXPORT], exact_exp, 0.1)
        e = bank.active_error.gain * p * dt / 3600.0
        exact_imp += np.clip(e, 0, None)
        exact_exp += np.clip(-e, 0, None)
    qs = s.quantities
    for k in range(3):
        on = phase == k
        for names in (VOLTAGE, CURRENT, POWER_ACTIVE, POWER_REACTIVE, POWER_FACTOR):
            assert np.isfinite(qs[names[k]][on]).all() and np.isnan(qs[names[k]][~on]).all()
    pick = np.arange(n)
    get = {names: np.stack([qs[x] for x in names], axis=1)[pick, phase]
           for names in (VOLTAGE, CURRENT, POWER_ACTIVE, POWER_REACTIVE, POWER_FACTOR)}
    check_derived(get[VOLTAGE], get[CURRENT], get[POWER_ACTIVE], get[POWER_REACTIVE], get[POWER_FACTOR], RES.current_a)
    assert np.array_equal(qs[Q.POWER_ACTIVE_TOTAL], get[POWER_ACTIVE])
    # split for the DIA: groups without NaN columns, every meter exactly once
    groups = split_finite(s)
    assert sorted(d for g in groups for d in g.devices) == sorted(bank.ids)
    for g in groups:
        assert all(np.isfinite(col).all() for col in g.quantities.values())
        assert isinstance(g, ClockedSample) and len(g.seq) == len(g.devices)
    readings = [r for env in encode_envelopes(s, 10) for r in orjson.loads(env)["readings"]]
    assert len(readings) == n
    by_dev = {r["dev"]: r for r in readings}
    for i in (0, 1, n - 1):
        suffix = f"l{phase[i] + 1}"
        assert {k.rsplit(".", 1)[-1] for k in by_dev[bank.ids[i]]["q"]} == {"import", "export", "total", suffix}


def test_home_meter_1hz_window() -> None:
    rng = np.random.default_rng(3)
    n, seconds = 40, 120
    home = HomeMeter1Hz(ids(n, "home-"), rng, initial_import_wh=1000.0)
    p = np.clip(300.0 + 2000.0 * (rng.random((n, seconds)) < 0.2), 0, None)  # kettle-like steps for NIALM
    q = 0.3 * p
    v = 230.0 + 2.0 * rng.standard_normal((n, seconds))
    out = home.sample_window(T0, v, p, q)
    assert [s.ts_ms for s in out] == [T0 + 1000 * k for k in range(seconds)]
    assert out[-1].seq.tolist() == [seconds] * n
    exact = 1000.0 + home.active_error.gain * p[:, :-1].sum(axis=1) / 3600.0  # last second not yet integrated
    check_register(out[-1].quantities[Q.ENERGY_ACTIVE_IMPORT], exact, 0.1)
    check_register(home.import_wh.display(), exact + home.active_error.gain * p[:, -1] / 3600.0, 0.1)
    qs = out[-1].quantities
    assert set(qs) == {Q.ENERGY_ACTIVE_IMPORT, Q.POWER_ACTIVE_TOTAL, *VOLTAGE, *CURRENT, *POWER_ACTIVE, *POWER_FACTOR}
    assert np.isnan(qs[VOLTAGE[1]]).all() and np.isfinite(qs[CURRENT[0]]).all()
    q_meas = qs[POWER_ACTIVE[0]] * np.tan(np.arccos(np.clip(qs[POWER_FACTOR[0]], -1, 1)))
    assert np.allclose(qs[CURRENT[0]], np.hypot(qs[POWER_ACTIVE[0]], q_meas) / qs[VOLTAGE[0]], atol=0.01)
    assert (np.abs(qs[CURRENT[0]] - p[:, -1] * math.hypot(1, 0.3) / v[:, -1]) < 0.02 * p[:, -1] / 230 + 0.01).all()


def test_blink_pulses_equal_floor_of_energy_and_fall_inside_their_step() -> None:
    rng = np.random.default_rng(17)
    n, steps, dt = 500, 200, 60.0
    gain = 1.0 + rng.uniform(-0.01, 0.01, n)
    clock = MeterClock.draw(n, rng, sync_ms=T0, offset_ms_sigma=0.0)
    blink = BlinkDetector(ids(n, "bd-"), gain=gain, clock=clock)
    energy = np.zeros(n)
    for k in range(steps):
        p = rng.uniform(-2000.0, 9000.0, n) * (rng.random(n) < 0.8)
        t0 = T0 + int(k * dt * 1000)
        pulses = blink.step(t0, p, dt)
        energy += np.clip(gain * p, 0, None) * dt / 3600.0
        assert np.array_equal(blink.total_pulses, np.floor(energy + 1e-9).astype(np.int64))
        assert np.array_equal(np.bincount(pulses.meter, minlength=n), pulses.counts)
        assert (pulses.counts[p <= 0] == 0).all()
        drift = np.abs(clock.error_ms(t0 + dt * 1000)).max() + 1
        assert (pulses.ts_ms >= t0 - drift).all() and (pulses.ts_ms <= t0 + dt * 1000 + drift).all()
        same = pulses.meter[1:] == pulses.meter[:-1]
        assert (np.diff(pulses.ts_ms)[same] >= 0).all()
        # the interval between pulses of one meter is 3600 / P seconds
        if same.any():
            gaps = np.diff(pulses.ts_ms)[same]
            expected = 3.6e6 / (gain * p)[pulses.meter[1:][same]]
            assert (np.abs(gaps - expected) <= 2.0 + expected * 1e-4).all()
    s = blink.sample(T0 + steps * 60_000)
    assert np.array_equal(s.quantities[Q.ENERGY_ACTIVE_IMPORT], blink.total_pulses.astype(float))
    assert np.allclose(s.quantities[Q.POWER_ACTIVE_TOTAL], pulses.counts * 60.0, atol=0.05)


def test_blink_detector_at_other_pulse_rates() -> None:
    blink = BlinkDetector(["bd-0", "bd-1"], imp_per_kwh=10_000.0)  # 10 imp/Wh
    pulses = blink.step(0, np.array([360.0, 36.0]), 10.0)  # 1 Wh and 0.1 Wh
    assert pulses.counts.tolist() == [10, 1]
    assert pulses.ts_ms[:10].tolist() == list(range(1000, 10_001, 1000))
    assert blink.sample(10_000).quantities[Q.ENERGY_ACTIVE_IMPORT].tolist() == [1.0, 0.1]


def test_tamper_flag_raises_one_tamper_event_stamped_by_the_meter_clock() -> None:
    rng = np.random.default_rng(1)
    n = 6
    clock = MeterClock(offset_ms=np.arange(n) * 100.0, drift_ppm=np.zeros(n), sync_ms=np.full(n, float(T0)))
    for bank in (SubstationMeterBank(ids(n), 10.0, rng, clock=clock),
                 SinglePhaseMeterBank(ids(n), np.arange(n) % 3, 10.0, rng, clock=clock)):
        full = (n, 3) if isinstance(bank, SubstationMeterBank) else (n,)
        args = (np.full(full, 230.0), np.full(full, 500.0))
        if isinstance(bank, SubstationMeterBank):
            args += (np.zeros(full),)
        bank.sample(T0, *args)
        assert bank.events(T0) == []
        flag = np.zeros(n, dtype=bool)
        flag[[1, 4]] = True
        bank.sample(T0 + 10_000, *args)
        ev = bank.events(T0 + 10_000, tamper=flag)
        assert [(e["dev"], e["type"], e["ts"]) for e in ev] == [
            ("m00001", "tamper", T0 + 10_100), ("m00004", "tamper", T0 + 10_400)]
        assert all(e["severity"] == "critical" for e in ev)
        bank.sample(T0 + 20_000, *args)
        assert bank.events(T0 + 20_000, tamper=flag) == []  # edge-triggered: no repeat while the cover stays open
        flag[1] = False
        assert bank.events(T0 + 30_000, tamper=flag) == []
        flag[1] = True
        assert [e["dev"] for e in bank.events(T0 + 40_000, tamper=flag)] == ["m00001"]
