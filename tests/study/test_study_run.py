"""A tiny real study through Mosquitto and the platform process: table, plots, capacity model, CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from gridloop.cli import main

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = str(ROOT / "scenarios" / "quickstart.yaml")


@pytest.mark.usefixtures("mosquitto_binary")  # a study measures the real Mosquitto broker
def test_two_point_sweep_writes_table_plots_and_model(tmp_path: Path, capsys) -> None:
    img = tmp_path / "img"
    code = main(["study", QUICKSTART, "--sweep", "meters=10,20", "--sweep", "duration=30min",
                 "--out", str(tmp_path / "study"), "--docs-img", str(img)])
    assert code == 0
    out = tmp_path / "study"
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert [r["point"] for r in rows] == ["meters=10,duration=30min", "meters=20,duration=30min"]
    for r, meters in zip(rows, (10, 20), strict=True):
        assert "error" not in r
        assert int(r["readings_stored"]) == int(r["readings_sampled"]) > 0
        assert int(r["readings_lost"]) == 0
        # 30 steps of 1 min, samples every 5 min: 6 instants of each household meter and the substation meter
        assert int(r["readings_sampled"]) == 6 * (meters + 1)
        assert float(r["latency_p50_ms"]) > 0 and int(r["probe_lost"]) == 0
        assert float(r["platform_cpu_s"]) > 0 and float(r["platform_rss_mb"]) > 10 and float(r["broker_rss_mb"]) > 0
        assert int(r["db_bytes"]) > 0 and float(r["bytes_per_reading"]) > 0
        assert float(r["query_readings_ms"]) > 0 and float(r["query_aggregates_ms"]) > 0
    assert "| meters=10,duration=30min |" in (out / "table.md").read_text()
    for name in ("throughput", "latency", "cpu", "query"):
        assert (out / f"study-{name}.png").stat().st_size > 1000
        assert (img / f"study-{name}.png").exists()
    summary = json.loads((out / "study.json").read_text())
    assert summary["largest_without_loss"] == "meters=20,duration=30min"
    capacity = json.loads((out / "capacity.json").read_text())
    assert set(capacity["projections"]) == {"1M meters @ 10 s", "1M meters @ 1 Hz"}
    assert "largest point without loss: meters=20,duration=30min" in capsys.readouterr().out


def test_cli_refuses_an_unknown_key_before_running(tmp_path: Path, capsys) -> None:
    assert main(["study", QUICKSTART, "--sweep", "houses=10", "--out", str(tmp_path)]) == 1
    assert "unknown key 'houses'" in capsys.readouterr().err
    assert not (tmp_path / "table.csv").exists()
