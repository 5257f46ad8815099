"""Disturbances injected from the scenario, each listed as ground truth: equipment outage, broker outage,
link outage and degradation, stuck register and clock drift."""

from __future__ import annotations

import pandas as pd
import pytest

from gridloop.engine.run import RunOptions, run_scenario
from gridloop.scenario.loader import parse_scenario


@pytest.mark.slow
def test_disturbances_have_their_effect_and_are_ground_truth(tmp_path):
    scenario = parse_scenario({
        "name": "disturbances", "seed": 12,
        "clock": {"start": "2026-01-15T08:00:00+01:00", "duration": "1h", "step": "1min"},
        "grid": {"network": "1-LV-urban6--0-sw"},
        "households": {"count": 40},
        "meters": {"interval": "1min", "link": {"technology": "gprs", "buffering": True}},
        "events": [
            {"at": "5min", "outage": {"element": "line", "index": 11, "duration": "20min"}},
            {"at": "10min", "broker_outage": {"duration": "5min"}},
            {"at": "12min", "link_outage": {"duration": "10min"}},
            {"at": "25min", "link_degradation": {"extra_loss": 0.4, "duration": "10min"}},
            {"at": "15min", "meter_fault": {"meter": "m00002", "kind": "stuck_register"}},
            {"at": "15min", "meter_fault": {"meter": "m00003", "kind": "clock_drift", "drift_ppm": 100000}},
        ],
        "outputs": {"progress": False, "plots": False},
    }, "test")
    summary = run_scenario(scenario, RunOptions(out=tmp_path))
    assert [e["kind"] for e in summary.injected] == ["equipment_outage", "broker_outage", "link_outage",
                                                         "stuck_register", "clock_drift", "link_degradation"]
    m = summary.messages
    assert m.readings_lost == 0  # the gateways and the DIA buffered through the link and broker outages
    vm = pd.read_parquet(tmp_path / "grid_bus_vm_pu.parquet")
    dead = (vm == 0).sum(axis=1)
    assert dead.iloc[:5].sum() == 0 and (dead.iloc[5:25] > 0).all() and dead.iloc[25:].sum() == 0
    readings = pd.read_parquet(tmp_path / "meter_readings.parquet")
    stuck = readings[readings.dev == "m00002"].set_index("ts")["electricity.energy.active.import"]
    assert stuck.iloc[16:].nunique() == 1 and stuck.iloc[:16].nunique() > 1
    from gridloop.platform.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    drifted = store.query_readings("demo", "m00003", None, None, 1000)
    offsets = [r.ts - (pd.Timestamp("2026-01-15T07:00:00Z").value // 10**6 + 60_000 * k)
               for k, r in enumerate(drifted)]
    assert offsets[:16] == [0] * 16 and offsets[-1] == pytest.approx(0.1 * 44 * 60_000, rel=0.05)
