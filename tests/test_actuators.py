"""Batteries and flexible loads commanded through the platform, end to end (embedded broker and platform)."""

from __future__ import annotations

import pandas as pd
import pytest

from gridloop.engine.run import RunOptions, run_scenario
from gridloop.scenario.loader import parse_scenario


@pytest.mark.slow
def test_battery_follows_setpoints_and_bad_commands_change_nothing(tmp_path):
    scenario = parse_scenario({
        "name": "battery", "seed": 5,
        "clock": {"start": "2026-01-15T00:00:00+01:00", "duration": "3h", "step": "1min"},
        "grid": {"network": "1-LV-urban6--0-sw",
                 "batteries": [{"id": "bat1", "bus": 0, "p_max_kw": 50, "capacity_kwh": 200, "soc": 0.5,
                                "efficiency": 0.9}]},
        "households": {"count": 20},
        "meters": {"interval": "15min"},
        "events": [
            {"at": "1h", "command": "storage.setpoint", "device": "bat1", "args": {"p_kw": 30}},
            {"at": "90min", "command": "storage.setpoint", "device": "bat1", "args": {"p_kw": 900}},  # > 50 kW
            {"at": "90min", "command": "switch.open", "device": "bat1"},  # wrong command for a battery
            {"at": "2h", "command": "storage.setpoint", "device": "bat1", "args": {"p_kw": -20}},
        ],
        "outputs": {"progress": False, "plots": False},
    }, "test")
    summary = run_scenario(scenario, RunOptions(out=tmp_path))
    assert summary.commands.model_dump() == {"received": 4, "executed": 2, "rejected": 2, "failed": 0}
    # 1 h charging at 30 kW (90 % efficient), then 1 h discharging at 20 kW
    expected_kwh = 100 + 30 * 0.9 - 20 / 0.9
    assert summary.batteries["bat1"]["soc"] == pytest.approx(expected_kwh / 200, abs=1e-4)
    # the transformer carries the battery: more load while charging than while discharging
    trafo = pd.read_parquet(tmp_path / "grid_trafo_loading_percent.parquet").iloc[:, 0]
    charging, discharging = trafo.iloc[60:120].mean(), trafo.iloc[120:180].mean()
    assert charging - discharging > 50 / 630 * 100 * 0.8  # ≈ 50 kW swing on a 630 kVA transformer


@pytest.mark.slow
def test_switch_battery_tap_and_fault_together_on_hyllie(tmp_path):
    """The grid-model capabilities end to end through the platform: command a switch, a battery and a tap
    changer, and let protection clear a cable fault; every effect shows in the grid the meters sample."""
    scenario = parse_scenario({
        "name": "hyllie-grid", "seed": 8,
        "clock": {"start": "2026-01-20T17:00:00+01:00", "duration": "1h", "step": "1min"},
        "grid": {"network": "hyllie",
                 "batteries": [{"id": "bat1", "bus": "H0 LV busbar", "p_max_kw": 60, "capacity_kwh": 120}]},
        "households": {"preset": "swedish_apartment"},
        "meters": {"interval": "1min"},
        "events": [
            {"at": "10min", "command": "storage.setpoint", "device": "bat1", "args": {"p_kw": -50}},
            {"at": "10min", "command": "switch.open", "device": "sw1"},  # H0F0 cabinet 1: buses 4, 5 behind it
            {"at": "10min", "command": "tap.set", "device": "tr1", "args": {"position": 2}},
            {"at": "10min", "command": "tap.set", "device": "tr1", "args": {"position": 7}},  # out of range
            {"at": "30min", "fault": {"line": 16, "position": 0.3}},  # H1F1, between buses 18 and 19
        ],
        "outputs": {"progress": False, "plots": False},
    }, "test")
    summary = run_scenario(scenario, RunOptions(out=tmp_path))
    assert summary.commands.model_dump() == {"received": 4, "executed": 3, "rejected": 1, "failed": 0}
    fault = summary.faults[0]
    assert fault["clearing_device"] == "sw13"  # the H1F1 feeder fuse
    assert 0 < fault["clearing_time_s"] < 5
    assert sorted(fault["deenergised_buses"]) == [4, 5, 18, 19, 20]  # 4 and 5 were already behind sw1
    vm = pd.read_parquet(tmp_path / "grid_bus_vm_pu.parquet")
    bus = {name: i for i, name in enumerate(vm.columns)}
    before, after_switch, after_fault = vm.iloc[5], vm.iloc[20], vm.iloc[40]
    assert (after_switch.iloc[[bus["H0F0 node 1"], bus["H0F0 node 2"]]] == 0).all()
    assert before.iloc[bus["H0F0 node 1"]] > 0.9
    assert (after_fault.iloc[[bus[f"H1F1 node {k}"] for k in range(3)]] == 0).all()
    # the tap changer (HV side) raised the H1 LV busbar by ~2 steps of 2.5 %
    assert after_switch.iloc[bus["H1 LV busbar"]] - before.iloc[bus["H1 LV busbar"]] < -0.03 or \
        after_switch.iloc[bus["H1 LV busbar"]] - before.iloc[bus["H1 LV busbar"]] > 0.03
    assert summary.batteries["bat1"]["soc"] < 0.5  # it discharged
    assert summary.events.by_type["power_outage"] > 0 and summary.events.by_type["voltage_sag"] > 0
