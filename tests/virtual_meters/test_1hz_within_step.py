"""1 Hz meters on a grid that steps at 1 min: each second carries the home's own demand, its mean the step's.

An evening hour of the pilot's ten 1 Hz homes (scenarios/pilot-1hz-buffering.yaml, 18:00-19:00, ideal link),
the grid and home meter stages stepped as a run steps them; shared by the tests below.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from gridloop.contract.quantities import VOLTAGE, Quantity
from gridloop.engine.substation_unit import build_unit
from gridloop.grid_models.grid_stage import GridOutput
from gridloop.scenario.loader import load_scenario
from gridloop.scenario.model import CommLink
from gridloop.stage import Clock, Outputs
from gridloop.virtual_meters.home_meters import WithinStep
from gridloop.virtual_meters.meter_stages import HomeMeterStage, within_step

ROOT = Path(__file__).resolve().parents[2]
STEPS = 60


@dataclass
class Hour:
    p: np.ndarray  # (meters, seconds) measured active power, W
    v: np.ndarray  # (meters, seconds) measured voltage on the home's phase, V
    p_step: np.ndarray  # (meters, steps) the step's served power, W
    v_step: np.ndarray  # (meters, steps) the step's phase voltage, V
    own_dp: np.ndarray  # (meters, seconds) the home's own demand around its step mean, W / var
    own_dq: np.ndarray
    register_wh: np.ndarray  # (meters, steps) import register advance over each step
    gain: np.ndarray  # (meters,) the meters' fixed active-power gain
    r_ohm: np.ndarray
    x_ohm: np.ndarray
    at_1s: WithinStep | None  # what a grid stepping at 1 s would hand the meters


def _stack(samples, quantity) -> np.ndarray:
    return np.stack([s.quantities[quantity] for s in samples], axis=1)


@pytest.fixture(scope="module")
def hour() -> Hour:
    s = load_scenario(ROOT / "scenarios" / "pilot-1hz-buffering.yaml")
    s.clock.start = s.clock.start.replace(hour=18)
    s.meters.link_1hz, s.meters.interval = CommLink(), 3600.0
    unit = build_unit(s, 0)
    meters, hz = unit.meters, unit.meters.hz_homes
    stage = HomeMeterStage(meters, unit.path, 60_000, path_1hz=unit.path_1hz)
    outs, epoch = Outputs(), int(s.clock.start.timestamp() * 1000)
    ids = {meters.ids[i] for i in hz}
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("p", "v", "p_step", "v_step", "dp", "dq", "reg")}
    for k in range(STEPS):
        clock = Clock(k * 60_000, 60_000, epoch)
        outs.now_ms = clock.now_ms
        outs.put(unit.grid.step(clock, outs))
        grid = outs.get(GridOutput)
        before = meters.hz.import_wh.value.copy()
        seconds = [r.sample for r in stage.step(clock, outs).items if r.record and set(r.sample.devices) == ids]
        assert len(seconds) == 60
        cols["reg"].append(meters.hz.import_wh.value - before)
        cols["p"].append(_stack(seconds, Quantity.POWER_ACTIVE_TOTAL))
        cols["v"].append(np.nansum(np.stack([_stack(seconds, q) for q in VOLTAGE]), axis=0))
        cols["p_step"].append(grid.home_p_w[hz])
        cols["v_step"].append(grid.bus_v_phase[meters.bus_index[hz], np.maximum(meters.phase[hz], 0)])
        own_p, own_q = grid.home_seconds(hz)
        cols["dp"].append(own_p - own_p.mean(axis=1, keepdims=True))
        cols["dq"].append(own_q - own_q.mean(axis=1, keepdims=True))
    assert within_step(grid, meters, 60) is not None
    r, x = grid.home_loop_impedance(hz, meters.phase[hz])
    cat = {k: np.concatenate(v, axis=1) if k in ("p", "v", "dp", "dq") else np.stack(v, axis=1)
           for k, v in cols.items()}
    return Hour(cat["p"], cat["v"], cat["p_step"], cat["v_step"], cat["dp"], cat["dq"], cat["reg"],
                meters.hz.active_error.gain.copy(), r, x, within_step(grid, meters, 1))


def _minutes(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0], STEPS, 60)


def test_a_meters_seconds_follow_the_homes_own_demand_within_the_minute(hour):
    spread = np.ptp(_minutes(hour.p), axis=2)  # (meters, minutes)
    switching = np.ptp(_minutes(hour.own_dp), axis=2) > 50
    assert switching.sum() >= 20  # appliances switch within many of the evening's minutes
    # where the home switches, its 60 samples spread by the switching, far beyond the meter's noise (0.05 %)
    assert np.all(spread[switching] > 40)
    noise = 0.0005 * np.abs(hour.p).max(axis=1)[:, None]  # class 1: 0.05 % (1 sigma) per sample
    assert np.all(np.abs(spread - np.ptp(_minutes(hour.own_dp), axis=2) * hour.gain[:, None]) <= 10 * noise + 0.2)
    assert (_minutes(hour.p).std(axis=2) > 1.0).mean() > 0.2


def test_b_mean_of_the_seconds_is_the_steps_power_and_the_register_its_energy(hour):
    mean = _minutes(hour.p).mean(axis=2)
    expected = hour.p_step * hour.gain[:, None]
    # noise 0.05 % per sample (1 sigma), averaged over 60: 5 sigma of the mean; display resolution 0.1 W
    assert np.all(np.abs(mean - expected) <= 5 * 0.0005 / np.sqrt(60) * np.abs(hour.p).max(axis=1)[:, None] + 0.05)
    assert (hour.p_step > 0).all() and (hour.p.min() > 0)  # no PV here: every second imports
    # the register (~1e7 Wh) adds 60 one-second parts: exact up to its float resolution (~1e-8 Wh)
    assert np.allclose(hour.register_wh, expected * 60 / 3600, rtol=0, atol=1e-6)


def test_a_grid_stepping_at_1s_keeps_the_steps_values(hour):
    assert hour.at_1s is None  # sample_1hz then repeats the step's V and P, as before


def test_c_few_power_changes_fall_on_grid_step_boundaries(hour):
    big = np.abs(np.diff(hour.p, axis=1)) > 20
    on_boundary = (np.arange(1, hour.p.shape[1]) % 60 == 0)[None, :]
    share = (big & on_boundary).sum() / big.sum()
    print(f"{big.sum()} changes > 20 W in the hour, {share:.1%} on a grid-step boundary")
    assert big.sum() > 200
    assert share <= 0.10  # uniform would be 1/60; before, every change above 20 W fell on a boundary


def test_d_voltage_moves_against_power_by_the_loop_impedance(hour):
    v_dev = (_minutes(hour.v) - _minutes(hour.v).mean(axis=2, keepdims=True)).reshape(hour.v.shape)
    drop = hour.r_ohm[:, None] * hour.own_dp + hour.x_ohm[:, None] * hour.own_dq
    implied = -drop / hour.v_step.mean(axis=1)[:, None]
    slope = float((v_dev * implied).sum() / (implied * implied).sum())
    assert 0.9 < slope < 1.1  # measured within-minute voltage changes are the impedance's, to first order
    busy = np.abs(implied).max(axis=1) > 0.09  # this stiff urban grid: changes near the 0.1 V resolution
    assert busy.sum() >= 4
    for m in np.flatnonzero(busy):  # where a home's switching moves its voltage, it drops as its power rises
        assert np.corrcoef(v_dev[m], hour.own_dp[m])[0, 1] < -0.2
    assert (hour.r_ohm > 0.002).all() and (hour.r_ohm < 0.5).all()
