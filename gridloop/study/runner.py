"""A whole study: expand the sweep, run every point (bounded in count and time), write table, plots and model."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from gridloop.study.point import run_point
from gridloop.study.report import largest_without_loss, write_plots, write_table
from gridloop.study.sweep import Point, StudyError

log = logging.getLogger(__name__)
MAX_POINTS = 64


def run_study(points: list[Point], out: Path, *, realtime: bool = False, speed: float | None = None,
              max_wall_s: float = 3600.0, echo=None) -> list[dict]:
    """Run the points in order; a failing point becomes an error row; stops starting points after ``max_wall_s``."""
    echo = echo or (lambda text: print(text, flush=True))
    if len(points) > MAX_POINTS:
        raise StudyError(f"{len(points)} points; a study runs at most {MAX_POINTS}: sweep fewer values")
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    t0 = time.monotonic()
    for i, point in enumerate(points):
        if time.monotonic() - t0 > max_wall_s:
            echo(f"time budget of {max_wall_s:.0f} s used up: {len(points) - i} point(s) not run")
            break
        echo(f"[{i + 1}/{len(points)}] {point.label} ...")
        try:
            row = run_point(point, out / f"p{i + 1:02d}", realtime, speed)
        except Exception as exc:  # one failing point must not lose the others' measurements
            log.exception("point %s failed", point.label)
            row = {"point": point.label, "error": f"{type(exc).__name__}: {exc}"[:200]}
        rows.append(row)
        if "error" not in row and "history_fill_s" in row:
            echo(f"    history restored: {row['history_raw_rows']:,} raw readings and {row['history_rollup_rows']:,}"
                 f" rollup rows in {row['history_fill_s']:.0f} s; store {row['db_mb']:,.0f} MB after the point")
        if "error" not in row:
            echo(f"    offered {row['offered_per_s']:,.0f}/s, stored {row['stored_per_s']:,.0f}/s, "
                 f"lost {row['readings_lost']}, p95 {row['latency_p95_ms']} ms")
        write_table(rows, out)  # after every point, so an interrupted study keeps what it measured
    write_plots(rows, out)
    best = largest_without_loss(rows)
    kept = largest_without_loss(rows, "kept_up")
    (out / "study.json").write_text(json.dumps({
        "points": rows, "largest_without_loss": best and best["point"],
        "largest_kept_up": kept and kept["point"]}, indent=1, default=str))
    return rows
