"""The capacity model's arithmetic on hand-made measurements."""

from __future__ import annotations

import math

import pytest

from gridloop.study.capacity import RHO_MAX, bytes_per_reading, fit, host_limit, model, project, render, split, validate


def _row(point: str, stored: int, meters: int, platform_us: float, broker_us: float = 1.0) -> dict:
    return {"point": point, "readings_stored": stored, "interval_s": 1.0, "meters": meters,
            "offered_per_s": stored / 20,
            "stored_per_s": stored / 20, "bytes_per_reading": 120.0, "kept_up": True,
            "platform_cpu_s": 0.5 + platform_us * 1e-6 * stored, "platform_rss_mb": 60 + 0.001 * meters,
            "broker_cpu_s": broker_us * 1e-6 * stored, "broker_rss_mb": 8.0,
            "simulator_cpu_s": 1.0 + 5e-6 * stored, "simulator_rss_mb": 400.0}


ROWS = [_row("a", 10_000, 500, 100), _row("b", 50_000, 2500, 100), _row("c", 200_000, 10_000, 100)]


def test_fit_recovers_the_per_reading_cost() -> None:
    f = fit(ROWS)
    assert f["platform"].per_reading_s == pytest.approx(100e-6)
    assert f["platform"].fixed_s == pytest.approx(0.5)
    assert f["platform"].max_rate_per_core == pytest.approx(10_000)
    assert f["platform"].rss_per_meter_kb == pytest.approx(1.024)
    assert f["broker"].fixed_s == pytest.approx(0, abs=1e-9)


def test_held_out_point_is_the_largest_and_is_predicted() -> None:
    overloaded = {**_row("d", 400_000, 20_000, 60), "kept_up": False}
    fit_rows, held, over = split([*ROWS, overloaded])
    assert held is not None and held["point"] == "c"  # the largest point whose store kept up
    assert [r["point"] for r in fit_rows] == ["a", "b"]
    assert [r["point"] for r in over] == ["d"]  # checked, never fitted
    v = validate(fit(fit_rows), held)
    assert v["components"]["platform"]["error_pct"] == pytest.approx(0, abs=0.1)


def test_host_limit_and_projection() -> None:
    f = fit(ROWS)
    limit = host_limit(f, cores=2)
    assert limit["first"] == "platform"  # 100 µs/reading: one core does 10,000/s, before 2 cores fill up
    assert limit["readings_per_s"] == pytest.approx(10_000)
    p = project(f, 100_000, 1_000_000, 120.0)
    platform = p["components"]["platform"]
    assert platform["cpu_cores_busy"] == pytest.approx(10)
    assert platform["instances"] == math.ceil(10 / RHO_MAX) == 15
    assert platform["utilisation"] <= RHO_MAX
    assert platform["envelope_wait_ms"] == pytest.approx(50 / (1 - 10 / 15), rel=1e-3)  # M/M/1: S / (1 - ρ)
    assert p["disk_gb_per_day"] == pytest.approx(120 * 100_000 * 86400 / 1e9, rel=1e-3)
    assert p["saturates_first"] == "platform"


def test_bytes_per_reading_comes_from_the_nearest_interval() -> None:
    rows = [{**ROWS[0], "interval_s": 1.0, "bytes_per_reading": 140.0},
            {**ROWS[1], "interval_s": 5.0, "bytes_per_reading": 360.0},
            {**ROWS[2], "interval_s": 5.0, "bytes_per_reading": 380.0}]
    assert bytes_per_reading(rows, 1.0) == 140.0
    assert bytes_per_reading(rows, 10.0) == 370.0  # 5 s is the nearest measured interval to 10 s


def test_model_marks_measured_and_projected() -> None:
    text = render(model(ROWS))
    assert "Measured inputs" in text and "PROJECTED: 1M meters @ 10 s" in text and "PROJECTED: 1M meters @ 1 Hz" in text
    assert "held-out point c" in text
    over = model([*ROWS, {**_row("d", 400_000, 20_000, 60), "kept_up": False}])
    assert over["overloaded_checks"][0]["point"] == "d"
    assert "Overloaded point d (not fitted" in render(over)


def _service_row(point: str, homes: int, per_sub: int, steps: int, partitions: int) -> dict:
    """A study point of a service in the loop: homes on substations of ``per_sub`` homes, one reading per step."""
    subs = -(-homes // per_sub)
    readings = homes * steps
    solved = subs * steps
    return {"point": point, "readings_stored": readings, "interval_s": 60.0, "meters": homes, "step_s": 60.0,
            "sim_s": 60.0 * steps, "substations": subs, "partitions": partitions, "offered_per_s": readings / 90,
            "stored_per_s": readings / 90, "bytes_per_reading": 300.0, "kept_up": True,
            "platform_cpu_s": 100e-6 * readings, "platform_rss_mb": 80 + 0.01 * homes,
            "broker_cpu_s": 1e-6 * readings, "broker_rss_mb": 9.0,
            "simulator_cpu_s": 2.0 * partitions + 20e-6 * readings + 3e-3 * solved,
            "simulator_rss_mb": 300 * partitions + 0.05 * homes}


def test_a_study_with_grid_solves_separates_the_solve_cost_and_validates_every_quantity() -> None:
    rows = [_service_row("a", 600, 300, 15, 1), _service_row("b", 3000, 100, 15, 2),
            _service_row("c", 6000, 300, 15, 1), _service_row("d", 1200, 50, 15, 2),
            _service_row("e", 9000, 300, 15, 2)]
    fit_rows, held, _ = split(rows)
    assert held is not None and held["point"] == "e"
    sim = fit(fit_rows)["simulator"]
    assert sim.per_solve_s == pytest.approx(3e-3, rel=1e-6)  # readings per solve vary: the two costs separate
    assert sim.per_reading_s == pytest.approx(20e-6, rel=1e-6)
    assert sim.fixed_s == pytest.approx(2.0, rel=1e-6) and sim.fixed_per_partition
    v = validate(fit(fit_rows), held)
    assert v["components"]["simulator"]["error_pct"] == pytest.approx(0, abs=0.1)
    for c in ("broker", "platform", "simulator"):  # memory is a fitted quantity too: predicted and checked
        assert {"measured_rss_mb", "predicted_rss_mb", "rss_error_pct"} <= set(v["components"][c])
    assert v["components"]["platform"]["rss_error_pct"] == pytest.approx(0, abs=0.1)
    assert v["components"]["simulator"]["rss_error_pct"] == pytest.approx(0, abs=0.1)  # a base per partition
    m = model(rows)
    assert m["readings_per_solve"] == pytest.approx(200, rel=1e-6)  # median of 300, 100, 300, 50 homes per substation
    assert m["validation"]["bytes_per_reading"] == {"measured": 300.0, "predicted": 300.0, "error_pct": 0.0}
    assert "CPU ms / grid solve" in render(m) and "predicted RSS MB" in render(m)


def test_one_fleet_shape_keeps_one_cost_per_reading() -> None:
    rows = [_service_row(p, h, 300, 15, 1) for p, h in (("a", 600), ("b", 3000), ("c", 6000), ("d", 9000))]
    sim = fit(rows)["simulator"]
    assert sim.per_solve_s == 0 and not sim.fixed_per_partition  # collinear: never an arbitrary split
    assert sim.per_reading_s == pytest.approx(20e-6 + 3e-3 / 300, rel=1e-6)
