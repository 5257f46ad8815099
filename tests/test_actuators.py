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
    assert summary["commands"] == {"received": 4, "executed": 2, "rejected": 2, "failed": 0}
    # 1 h charging at 30 kW (90 % efficient), then 1 h discharging at 20 kW
    expected_kwh = 100 + 30 * 0.9 - 20 / 0.9
    assert summary["batteries"]["bat1"]["soc"] == pytest.approx(expected_kwh / 200, abs=1e-4)
    # the transformer carries the battery: more load while charging than while discharging
    trafo = pd.read_parquet(tmp_path / "grid_trafo_loading_percent.parquet").iloc[:, 0]
    charging, discharging = trafo.iloc[60:120].mean(), trafo.iloc[120:180].mean()
    assert charging - discharging > 50 / 630 * 100 * 0.8  # ≈ 50 kW swing on a 630 kVA transformer
