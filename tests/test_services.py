"""The reference services against their scenarios, in real time (sped up), through the real broker and platform.

Each service is its own process that knows only MQTT topics and REST paths; KPIs come from ground truth.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gridloop.engine.run import RunOptions, run_scenario
from gridloop.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def _run(name: str, tmp_path, **clock) -> dict:
    scenario = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    for key, value in clock.items():
        setattr(scenario.clock, key, value)
    summary = run_scenario(scenario, RunOptions(out=tmp_path, progress=False))
    m = summary.messages
    assert m.readings_stored == m.readings_published == m.readings_sampled > 0
    assert (tmp_path / "report.md").exists() or name == "fault-location-turin"
    return summary


@pytest.mark.slow
def test_fault_location_finds_the_section_isolates_it_and_restores_the_rest(tmp_path):
    summary = _run("fault-location-turin", tmp_path, duration=15 * 60.0)
    fl = summary.kpis["fault_location"]
    assert fl["correct_section"] is True and fl["distance_in_sections"] == 0
    assert fl["switching_actions"][0].startswith("switch.open")  # isolate first ...
    assert any(a.startswith("switch.close") for a in fl["switching_actions"])  # ... then restore
    assert fl["trips"] == 1  # nothing was reclosed onto the fault
    assert 0 < fl["customer_minutes_lost"] < fl["baseline_customer_minutes_lost"]
    assert summary.events.by_type["voltage_sag"] > 0 and summary.events.by_type["last_gasp"] > 0


@pytest.mark.slow
def test_demand_response_keeps_the_transformer_under_its_limit(tmp_path):
    summary = _run("demand-response-hyllie", tmp_path, start=_at("2026-01-20T17:50:00+01:00"),
                   duration=45 * 60.0, speed=90.0)
    k = summary.kpis
    assert k["baseline_minutes_above_limit"] >= 10  # the evening really needs DR
    assert k["minutes_above_limit"] <= 0.2 * k["baseline_minutes_above_limit"]
    assert k["peak_reduction_kw"] > 0
    assert k["energy_curtailed_kwh"] > 0
    assert summary.commands.executed > 0 and summary.commands.rejected == 0
    report = (tmp_path / "report.md").read_text()
    assert "## Where the limit could not be kept" in report  # and says where, or that it held everywhere


@pytest.mark.slow
def test_storage_peak_shaving_cuts_the_peak(tmp_path):
    summary = _run("storage-peak-shaving", tmp_path, start=_at("2026-01-20T17:50:00+01:00"),
                   duration=45 * 60.0, speed=90.0)
    k = summary.kpis
    assert k["peak_reduction_kw"] > 10
    assert k["minutes_above_limit"] < k["baseline_minutes_above_limit"]
    assert k["battery_throughput_kwh"] > 0 and 0 < k["battery_losses_kwh"] < 0.15 * k["battery_throughput_kwh"]
    assert summary.batteries["bat1"]["soc"] < 0.9  # it discharged


def _at(iso: str):
    from datetime import datetime

    return datetime.fromisoformat(iso)
