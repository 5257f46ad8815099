"""Demand response at scale: the Hyllie DR scenario on S substations, partitioned, each with its own service.

Usage (from the repo root): ``python benchmarks/dr_substations.py [scenarios/demand-response-hyllie.yaml]
[--substations 20] [--workers 2] [--duration 30min] [--speed 10] [--skip 1h]``.

Two whole ``gridloop run``s in real time (embedded Mosquitto and platform, SQLite store): the reference, one
substation in one process, then S substations on ``--workers`` partitions, every substation with its own
demand-response process (listening to its own DIA, commanding its own homes). Printed per run: wall time, the
largest lag behind real time and the late steps, readings stored of published, commands executed, the command
latency (publication by the platform to applied in the grid, wall clock; per substation, then the median of
their p50 and the largest p95), and the minutes above the transformer limit with and without the service,
summed over the substations; then the ratios of the scaled run to the reference measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import yaml

from gridloop.engine.run import RunOptions
from gridloop.engine.workers import run_workers
from gridloop.scenario.loader import load_scenario
from gridloop.scenario.model import parse_duration


def _run(base, substations: int, workers: int, work: Path) -> dict:
    s = base.model_copy(deep=True)
    s.grid.substations = substations
    path = work / f"{s.name}-{substations}.yaml"
    path.write_text(yaml.safe_dump(s.model_dump(mode="json", exclude_none=True)))
    t0 = time.perf_counter()
    summary = run_workers(path, load_scenario(path), RunOptions(out=work / f"s{substations}", progress=False),
                          workers)
    wall = time.perf_counter() - t0
    per = summary.kpis.get("by_substation") or {"substation-1": summary.kpis}
    latency = [k["command_latency_ms"] for k in per.values() if "command_latency_ms" in k]
    m = summary.messages
    return {
        "wall_s": wall, "max_lag_s": summary.realtime.max_lag_s, "late": summary.realtime.late_steps,
        "steps": summary.steps, "stored": m.readings_stored, "published": m.readings_published,
        "lost": m.readings_lost, "executed": summary.commands.executed, "failed": summary.commands.failed,
        "p50_ms": statistics.median(x["p50"] for x in latency) if latency else float("nan"),
        "p95_ms": max(x["p95"] for x in latency) if latency else float("nan"),
        "above": sum(k.get("minutes_above_limit", 0.0) for k in per.values()),
        "baseline_above": sum(k.get("baseline_minutes_above_limit", 0.0) for k in per.values()),
        "substations_acting": sum(k.get("energy_curtailed_kwh", 0.0) > 0 for k in per.values()),
    }


def _line(name: str, r: dict, substations: int) -> str:
    return (f"{name}: wall {r['wall_s']:.1f} s, max lag {r['max_lag_s']:.2f} s, late {r['late']}/{r['steps']} steps; "
            f"readings stored {r['stored']:,} of {r['published']:,} published (lost {r['lost']}); commands "
            f"executed {r['executed']:,} (failed {r['failed']}), latency p50 {r['p50_ms']:.0f} ms, p95 "
            f"{r['p95_ms']:.0f} ms; minutes above the limit {r['above']:.0f} (without DR {r['baseline_above']:.0f}), "
            f"DR curtailed in {r['substations_acting']} of {substations} substations")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("scenario", nargs="?", default="scenarios/demand-response-hyllie.yaml")
    ap.add_argument("--substations", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--duration", default="30min", help="simulated time of each run")
    ap.add_argument("--speed", type=float, default=10.0, help="times real time")
    ap.add_argument("--skip", default="1h", help="start this long after the scenario's start (its evening peak)")
    a = ap.parse_args()
    base = load_scenario(a.scenario)
    base.clock.start += timedelta(seconds=parse_duration(a.skip))
    base.clock.duration, base.clock.speed = parse_duration(a.duration), a.speed
    base.outputs.progress, base.outputs.plots, base.outputs.series = False, False, False
    work = Path(tempfile.mkdtemp(prefix="dr-substations-"))
    print(f"{base.name}: {a.duration} from {base.clock.start:%H:%M} at x{a.speed:g} real time, step "
          f"{base.clock.step:.0f} s")
    ref = _run(base, 1, 1, work)
    print(_line("reference, 1 substation, 1 process", ref, 1), flush=True)
    big = _run(base, a.substations, a.workers, work)
    print(_line(f"{a.substations} substations on {a.workers} partitions", big, a.substations))
    print(f"ratios to the reference: command latency p95 {big['p95_ms'] / ref['p95_ms']:.2f}x, p50 "
          f"{big['p50_ms'] / ref['p50_ms']:.2f}x; max lag {big['max_lag_s'] / max(ref['max_lag_s'], 1e-3):.1f}x; "
          f"readings {big['published'] / ref['published']:.1f}x; (run directories in {work})")


if __name__ == "__main__":
    main()
