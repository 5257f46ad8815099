"""A study of a service in the loop, through the real broker, platform and DR processes, 1 and 2 partitions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from gridloop.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.usefixtures("mosquitto_binary")
def test_a_dr_study_times_each_commands_round_trip_and_scores_the_service(tmp_path: Path) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(f"""
study:
  scenario: {ROOT / 'scenarios' / 'demand-response-hyllie.yaml'}
  services: true
  realtime: true
  speed: 60
  set: {{clock.start: "2026-01-20T17:30:00+01:00", clock.duration: 15min}}
  sweep: {{homes: [636], partitions: [1, 2]}}
""")
    out = tmp_path / "out"
    assert main(["study", str(study), "--out", str(out)]) == 0
    rows = json.loads((out / "study.json").read_text())["points"]
    assert [r["point"] for r in rows] == ["homes=636,partitions=1", "homes=636,partitions=2"]
    for r in rows:
        assert "error" not in r, r.get("error")
        assert r["substations"] == 2 and r["readings_lost"] == 0
        # the service acted: every command it sent was applied in the grid and then seen in the readings
        assert r["commands_executed"] > 0 and r["commands_failed"] == 0
        assert r["commands_timed"] == r["commands_executed"] and r["commands_not_visible"] == 0
        # a command is applied at the next step (1 s of wall time at x60), then the next readings show it
        assert 0 < r["command_executed_p50_ms"] <= r["command_round_trip_p50_ms"]
        assert r["command_round_trip_p95_ms"] < 5_000
        assert r["minutes_above_limit"] < r["baseline_minutes_above_limit"]
        assert r["max_lag_s"] < 1.0
    assert rows[0]["readings_stored"] == rows[1]["readings_stored"]  # the same homes, split over two processes
    assert rows[1]["simulator_cpu_s"] > 0 and rows[1]["simulator_rss_mb"] > rows[0]["simulator_rss_mb"] / 2
    table = (out / "table.md").read_text()
    assert "round trip p95 ms" in table and "min above limit" in table
    assert (out / "study-service.png").stat().st_size > 10_000
    columns = next(csv.reader((out / "table.csv").open()))
    assert {"command_round_trip_p50_ms", "minutes_above_limit", "partitions"} <= set(columns)
