"""The `history` sweep key: days of past data restored into a point's store before its load, then measured."""

from __future__ import annotations

import csv
import math
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from gridloop.cli import main
from gridloop.study import history
from gridloop.study.history import GAP_S, parse_history, plan_history
from gridloop.study.sweep import StudyError, apply_point, parse_sweeps

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
BASE = yaml.safe_load(QUICKSTART.read_text())
START_MS = int(datetime.fromisoformat(BASE["clock"]["start"]).timestamp() * 1000)
HOUSEHOLD_QUANTITIES = 9


def test_history_values_parse_like_durations_and_zero() -> None:
    assert [parse_history(v) for v in ("0", "0d", "0.0h", "2d", "12h")] == [0.0, 0.0, 0.0, 172_800.0, 43_200.0]
    assert parse_sweeps(["history=0d,7d,30d"]) == {"history": ["0d", "7d", "30d"]}
    for bad in ("-1d", "0parsecs", "soon"):
        with pytest.raises(StudyError, match="history"):
            parse_sweeps([f"history={bad}"])


def test_plan_caps_raw_readings_and_refuses_too_much() -> None:
    p = apply_point(BASE, {"meters": "1000", "interval": "10s", "history": "30d"})
    plan = plan_history(p.scenario, p.history_s)
    per_meter = 30 * 8640
    assert plan.end_ms == START_MS - GAP_S * 1000 and plan.start_ms == plan.end_ms - 30 * 86_400_000
    assert plan.meters[0][0] == "m00001"  # the meter the point's queries ask has raw history
    whole = history.RAW_ROWS_MAX // per_meter
    assert plan.raw_meters == whole and plan.raw_rows == whole * per_meter + (1000 - whole) * history.RECENT_RAW
    assert plan.raw_from[:whole] == (plan.start_ms,) * whole
    assert set(plan.raw_from[whole:]) == {plan.end_ms - history.RECENT_RAW * 10_000}  # the newest 40 min raw
    # before that: 15m, 1h and 1d buckets of all quantities (from 23:00 UTC to 22:20 UTC 30 days later)
    homes = p.scenario.households.count
    per_q = (30 * 96 - 2) + 30 * 24 + 31
    assert plan.rollup_rows == per_q * ((homes - whole) * HOUSEHOLD_QUANTITIES + (1000 - homes) * 2)
    one_hz = plan_history(apply_point(BASE, {"meters": "10", "interval": "1s", "history": "30d"}).scenario, 30 * 86400)
    assert one_hz.raw_meters == 0 and one_hz.raw_from[0] == one_hz.end_ms - history.RAW_ROWS_MAX * 1000
    assert one_hz.raw_rows == history.RAW_ROWS_MAX + 9 * history.RECENT_RAW  # the newest readings of the first
    with pytest.raises(StudyError, match=r"point meters=20000,history=60d: .* rows; at most"):
        apply_point(BASE, {"meters": "20000", "history": "60d"})


@pytest.mark.usefixtures("mosquitto_binary")  # a study measures the real Mosquitto broker
def test_a_point_with_two_days_of_history_measures_a_larger_store(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(history, "RAW_ROWS_MAX", 3 * 576)  # 3 of the 10 meters raw throughout, 7 raw for 20 h
    out = tmp_path / "study"
    code = main(["study", str(QUICKSTART), "--sweep", "meters=10", "--sweep", "duration=30min",
                 "--sweep", "history=0d,2d", "--out", str(out)])
    assert code == 0
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert [r["point"] for r in rows] == ["meters=10,duration=30min,history=0d", "meters=10,duration=30min,history=2d"]
    for r in rows:
        assert "error" not in r or not r["error"]
        assert int(r["readings_stored"]) == int(r["readings_sampled"]) == 6 * 11  # the run sees only its readings
        assert int(r["readings_lost"]) == 0
        for key in ("query_readings_ms", "query_aggregates_ms", "query_completeness_ms", "query_metrics_ms"):
            assert not math.isnan(float(r[key])) and float(r[key]) > 0, key
    empty, grown = rows
    assert float(empty["history_days"]) == 0 and float(grown["history_days"]) == 2
    assert int(grown["db_bytes"]) > int(empty["db_bytes"])
    assert float(grown["query_history_readings_ms"]) > 0 and float(grown["query_history_aggregates_ms"]) > 0
    assert "query day raw ms" in (out / "table.md").read_text()
    assert (out / "study-growth.png").stat().st_size > 1000

    # what the restore wrote, read back from the 2d point's store: 2 days at 5 min = 576 readings per meter
    end = START_MS - int(GAP_S * 1000)
    db = sqlite3.connect(out / "p02" / "store.db")
    raw = db.execute("SELECT dev, count(*) FROM readings WHERE ts < ? GROUP BY dev", (end,)).fetchall()
    assert raw == [(f"m{i:05d}", 576 if i <= 3 else history.RECENT_RAW) for i in range(1, 11)]
    assert int(grown["history_raw_rows"]) == 3 * 576 + 7 * 240
    # per quantity: raw throughout: 576 1-min, 192 15-min, 48 hourly and 3 daily buckets (start 23:00 UTC);
    # raw for the last 20 h only: 15m, 1h, 1d buckets for the 28 h before (112 + 28 + 3), all four for the 20 h
    # (240 + 80 + 20 + the day already there)
    rollups = db.execute("SELECT count(*) FROM rollups WHERE b < ?", (end,)).fetchone()[0]
    assert rollups == int(grown["history_rollup_rows"]) == HOUSEHOLD_QUANTITIES * (3 * 819 + 7 * 483)
    # a meter restored partly as rollups only has the buckets and counts ingest gave a meter restored raw
    per_res = "SELECT res, count(*), sum(n) FROM rollups WHERE dev=? AND q=? AND res>60000 AND b<? GROUP BY res"
    q = "electricity.energy.active.import"
    assert db.execute(per_res, ("m00009", q, end)).fetchall() == db.execute(per_res, ("m00001", q, end)).fetchall()
    assert db.execute("SELECT count(*) FROM readings WHERE dev='m00001' AND ts >= ? AND ts < ?",
                      (end - 86_400_000, end)).fetchone()[0] == 288  # the day the history queries ask
    db.close()
