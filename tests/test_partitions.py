"""Partitions: the same scenario and seed store the same readings whatever the number of local workers."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from gridloop.engine.run import RunOptions, run_scenario
from gridloop.engine.workers import run_workers
from gridloop.platform.store.sqlite.values import stored_values
from gridloop.scenario.loader import load_scenario

SCENARIO = """\
name: partitions
seed: 4
clock: {start: "2026-01-15T06:00:00+01:00", duration: 40min, step: 1min}
grid: {network: 1-LV-urban6--0-sw}
meters: {interval: 1min, utility: {heat_meters: 2}}
events: [{at: 10min, command: switch.open, device: sw1}]
outputs: {progress: false, plots: false}
"""


def _stored(run_dir: Path) -> list[tuple]:
    return stored_values(str(run_dir / "store.db"))


def _run_with_1_2_4_workers(tmp_path: Path, text: str) -> tuple[dict, dict]:
    """The scenario run with 1, 2 and 4 local partitions: the readings each stored, and each summary."""
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    scenario = load_scenario(path)
    stored, summaries = {}, {}
    for n in (1, 2, 4):
        summaries[n] = run_workers(path, scenario, RunOptions(out=tmp_path / f"n{n}", progress=False), n)
        stored[n] = _stored(tmp_path / f"n{n}")
    return stored, summaries


@pytest.mark.slow
def test_one_two_and_four_partitions_store_identical_readings(tmp_path):
    stored, summaries = _run_with_1_2_4_workers(tmp_path, SCENARIO)
    assert len(stored[1]) == (102 + 1) * 40 + 2 * 8  # homes and substation every minute, heat every 5 min
    assert stored[1] == stored[2] == stored[4]
    for n, summary in summaries.items():
        m = summary.messages
        assert m.readings_stored == m.readings_sampled == len(stored[1]), n
        assert len(summary.partitions) == n
        assert summary.commands.executed == 1  # answered once, by the lead partition
        for name in ("meters", "links", "events", "demand", "customer_minutes_lost", "completeness"):
            assert getattr(summary, name) == getattr(summaries[1], name), (n, name)
        assert _grid_kpis(summary.kpis) == _grid_kpis(summaries[1].kpis), n
    assert summaries[1].events.published and summaries[1].completeness and _grid_kpis(summaries[1].kpis)
    # the switch opened in every partition's grid: meters behind it read 0 V in all of them alike
    assert any(_value(row, "electricity.voltage.l1") == 0.0 for row in stored[4])


def _grid_kpis(kpis: dict) -> dict:
    """The KPIs of the grid (the command latency, in wall-clock time, differs run to run)."""
    return {k: v for k, v in kpis.items() if k != "command_latency_ms"}


def _value(row: tuple, quantity: str) -> float | None:
    """A quantity's value in a stored row (dev, ts, seq, quantity values)."""
    return next((float.fromhex(v) for name, v in row[3] if name == quantity), None)


SUBSTATIONS = """\
name: substations
seed: 9
clock: {start: "2026-01-15T06:00:00+01:00", duration: 20min, step: 1min}
grid: {network: 1-LV-urban6--0-sw, substations: 4}
meters: {interval: 5min, utility: {water_meters: 3, water_interval: 5min}}
outputs: {progress: false, plots: false, series: false}
"""


@pytest.mark.slow
def test_substation_partitions_split_the_work_and_store_identical_readings(tmp_path):
    stored, summaries = _run_with_1_2_4_workers(tmp_path, SUBSTATIONS)
    per_substation = (102 + 1 + 3) * 4  # homes, substation meter and water meters, every 5 minutes
    assert len(stored[1]) == 4 * per_substation
    assert stored[1] == stored[2] == stored[4]
    # each substation has its own namespace and its own seed: the same meter reads differently in each
    devs = {row[0] for row in stored[1]}
    assert {d.split("-")[0] for d in devs} == {"s001", "s002", "s003", "s004"}
    first = {row[0]: row[3] for row in stored[1] if row[0].endswith("-m00001")}
    assert len(set(first.values())) == 4
    for n, summary in summaries.items():
        assert summary.messages.readings_stored == len(stored[1]), n
        assert summary.meters == 4 * (102 + 1 + 3)
        # the partitions split the substations between them: each runs only its own
        ran = [p["substations"] for p in summary.partitions]
        assert sorted(s for r in ran for s in r) == ["s001", "s002", "s003", "s004"]
        assert all(len(r) == 4 // n for r in ran)
        assert [p["readings_sampled"] for p in summary.partitions] == [len(stored[1]) // n] * n


def test_more_partitions_than_substations_is_refused(tmp_path):
    path = tmp_path / "substations.yaml"
    path.write_text(SUBSTATIONS)
    with pytest.raises(ValueError, match="5 partitions for 4 substations"):
        run_workers(path, load_scenario(path), RunOptions(out=tmp_path / "x", progress=False), 5)


@pytest.mark.parametrize(("event", "message"), [
    ("{at: 5min, command: switch.open, device: sw1}",
     r"events\[0\]\.substation: grid\.substations is 4: name the substation \(1\.\.4\)"),
    ("{at: 5min, substation: 5, command: switch.open, device: sw1}",
     r"events\[0\]\.substation: 5 is not one of the run's substations \(1\.\.4\)"),
    ("{at: 5min, substation: 1, broker_outage: {duration: 1min}}",
     r"events\[0\]: broker_outage stops the broker every substation shares"),
])
def test_substation_events_must_name_their_substation(tmp_path, event, message):
    path = tmp_path / "bad.yaml"
    path.write_text(SUBSTATIONS + f"events: [{event}]\n")
    with pytest.raises(Exception, match=r"bad\.yaml.*" + message):
        load_scenario(path)


FAULT_IN_SUBSTATION_2 = """\
name: fault-in-substation-2
seed: 7
clock: {start: "2026-01-20T17:00:00+01:00", duration: 10min, step: 10s, realtime: true, speed: 30}
grid: {network: turin, substations: 2}
households: {preset: italian_family}
meters: {interval: 1min}
events: [{at: 5min, substation: 2, fault: {line: 27, position: 0.5}}]
services: [{name: fault_location, args: {settle-s: 2}}]
outputs: {progress: false, series: false, plots: false}
"""


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_fault_location_runs_per_substation_and_switches_only_its_own(tmp_path, workers):
    path = tmp_path / "fault.yaml"
    path.write_text(FAULT_IN_SUBSTATION_2)
    summary = run_workers(path, load_scenario(path), RunOptions(out=tmp_path / "run", progress=False), workers)
    by = summary.kpis["by_substation"]
    assert "fault_location" not in by.get("s001", {})  # no fault there: nothing to score, nothing switched
    fault = by["s002"]["fault_location"]
    assert fault["correct_section"] and fault["located_line"] == fault["true_line"] == 27
    assert fault["switching_actions"] and fault["customer_minutes_saved"] > 0
    switched = [c["device"] for part in sorted((tmp_path / "run").glob("part-*/commands.json"))
                for c in json.loads(part.read_text())]
    assert switched and all(d.startswith("s002-sw") for d in switched)  # substation 1's grid was never switched


SUBSTATION_EVENTS = """\
name: substation-events
seed: 9
clock: {start: "2026-01-15T06:00:00+01:00", duration: 20min, step: 1min}
grid: {network: 1-LV-urban6--0-sw, substations: 2}
meters: {interval: 1min, link: {technology: rf_mesh, profile: field, gateways: 3, buffering: false}}
events:
  - {at: 5min, substation: 2, command: switch.open, device: sw1}
  - {at: 8min, substation: 1, meter_fault: {meter: m00003, kind: stuck_register}}
outputs: {progress: false}  # series and plots: the whole run's substations plot too
"""


@pytest.mark.slow
def test_events_act_in_their_own_substation_for_any_number_of_partitions(tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_text(SUBSTATION_EVENTS)
    scenario = load_scenario(path)
    stored, summaries = {}, {}
    for n in (1, 2):
        summaries[n] = run_workers(path, scenario, RunOptions(out=tmp_path / f"n{n}", progress=False), n)
        stored[n] = _stored(tmp_path / f"n{n}")
    assert stored[1] == stored[2]
    dead = {row[0] for row in stored[1] if _value(row, "electricity.voltage.l1") == 0.0}
    assert dead and all(d.startswith("s002-m") for d in dead)  # the switch opened in substation 2 only
    energy = {}
    for row in stored[1]:
        energy.setdefault(row[0], []).append((row[1], _value(row, "electricity.energy.active.import")))
    t_fault = min(ts for ts, _ in energy["s001-m00003"]) + 8 * 60_000
    stuck = [e for ts, e in energy["s001-m00003"] if ts >= t_fault]
    moving = [e for ts, e in energy["s002-m00003"] if ts >= t_fault]
    assert len(set(stuck)) == 1 and len(set(moving)) > 1  # the register stuck in substation 1's meter only
    for n, summary in summaries.items():
        assert summary.commands.executed == 1, n  # sent once, to s002-sw1, answered by substation 2's controller
        assert [(x["kind"], x["meter"], x["substation"]) for x in summary.injected] == [
            ("stuck_register", "m00003", "s001")], n
    # the partitions' summaries joined say what one process running every substation says
    whole = run_scenario(scenario, RunOptions(out=tmp_path / "one", progress=False))
    assert _stored(tmp_path / "one") == stored[1]
    joined = ("substations", "meters", "links", "events", "demand", "batteries", "injected", "faults",
              "customer_minutes_lost", "completeness", "commands")
    assert set(whole.kpis["by_substation"]) == {"s001", "s002"} and whole.completeness and whole.events.published
    assert whole.customer_minutes_lost > 0  # substation 2's meters behind the opened switch
    assert whole.links.gateways == 6 and whole.links.paths[0].meter_count == 2 * 102  # 3 gateways a substation
    assert "substations.png" in whole.outputs
    for n, summary in summaries.items():
        assert "substations.png" in summary.outputs and "part-0/feeder_voltages.png" in summary.outputs, n
        assert all((tmp_path / f"n{n}" / f).stat().st_size > 0 for f in summary.outputs), n
        for name in joined:
            assert getattr(summary, name) == getattr(whole, name), (n, name)
        assert {k: _grid_kpis(v) for k, v in summary.kpis["by_substation"].items()} == {
            k: _grid_kpis(v) for k, v in whole.kpis["by_substation"].items()}, n


@pytest.mark.slow
def test_partitions_take_the_runs_account_and_tenant_over_an_exported_password_file(tmp_path, monkeypatch):
    """A user's exported $GRIDLOOP_MQTT_PASSWORD_FILE (their own account's) must not replace the broker passwords the
    run hands its platform and partitions; the tenant chosen for the run reaches every partition."""
    stale = tmp_path / "mine.password"
    stale.write_text("not-this-runs-password\n")
    monkeypatch.setenv("GRIDLOOP_MQTT_PASSWORD_FILE", str(stale))
    monkeypatch.delenv("GRIDLOOP_TENANT", raising=False)
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO.replace("duration: 40min", "duration: 10min").replace(
        "events: [{at: 10min, command: switch.open, device: sw1}]\n", ""))
    summary = run_workers(path, load_scenario(path), RunOptions(out=tmp_path / "run", progress=False, tenant="blue"),
                          2)
    assert summary.messages.readings_stored == summary.messages.readings_sampled == (102 + 1) * 10 + 2 * 2
    with sqlite3.connect(tmp_path / "run" / "store.db") as db:
        assert db.execute("SELECT DISTINCT tenant FROM readings").fetchall() == [("blue",)]
