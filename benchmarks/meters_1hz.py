"""Cost per grid step of 1 Hz meters on 1-min grid steps: seconds from the homes' own demand vs repeated step values.

Run:  .venv/bin/python benchmarks/meters_1hz.py [--homes 100] [--steps 60] [--rounds 5]   (from the repo root)

SimBench 1-LV-urban6 with ``--homes`` synthetic homes, each with a 1 Hz meter, stepped at 1 min from 18:00.
Each step the grid is solved once (not timed), then the 1 Hz meters' 60 samples are taken both ways, interleaved:
the old path (every second at the step's V and P) and the new one (the home's own demand within the step, V
through its loop impedance). Both sample the same meter bank; ratios are new / old in the same run. It also
counts, over the hour, the share of changes above 20 W that fall on a grid-step boundary, both ways.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridloop.contract.quantities import Quantity  # noqa: E402
from gridloop.engine.substation_unit import build_unit  # noqa: E402
from gridloop.grid_models.grid_stage import GridOutput  # noqa: E402
from gridloop.scenario.loader import load_scenario  # noqa: E402
from gridloop.scenario.model import CommLink  # noqa: E402
from gridloop.stage import Clock, Outputs  # noqa: E402
from gridloop.virtual_meters.meter_stages import within_step  # noqa: E402


def boundary_share(p: np.ndarray) -> tuple[int, float]:
    """Changes above 20 W between consecutive seconds, and the share of them across a 60-s step boundary."""
    big = np.abs(np.diff(p, axis=1)) > 20
    on = (np.arange(1, p.shape[1]) % 60 == 0)[None, :]
    return int(big.sum()), float((big & on).sum() / max(big.sum(), 1))


def run(homes: int, steps: int) -> dict[str, float]:
    s = load_scenario(ROOT / "scenarios" / "pilot-1hz-buffering.yaml")
    s.clock.start = s.clock.start.replace(hour=18)
    s.households.count = s.meters.home_1hz = homes
    s.meters.link_1hz, s.meters.interval = CommLink(), 3600.0
    unit = build_unit(s, 0)
    meters, hz = unit.meters, unit.meters.hz_homes
    outs, epoch = Outputs(), int(s.clock.start.timestamp() * 1000)
    t = {"old": 0.0, "new": 0.0, "within": 0.0}
    p_old, p_new = [], []
    for k in range(steps):
        clock = Clock(k * 60_000, 60_000, epoch)
        outs.now_ms = clock.now_ms
        outs.put(unit.grid.step(clock, outs))
        grid = outs.get(GridOutput)
        v3 = grid.bus_v_phase[meters.bus_index]
        t0 = time.perf_counter()
        old = meters.sample_1hz(clock.unix_ms, 60, v3, grid.home_p_w)
        t1 = time.perf_counter()
        within = within_step(grid, meters, 60)
        t2 = time.perf_counter()
        new = meters.sample_1hz(clock.unix_ms, 60, v3, grid.home_p_w, within)
        t3 = time.perf_counter()
        if k:  # the first step builds the loop impedances once (reported apart)
            t["old"] += t1 - t0
            t["within"] += t2 - t1
            t["new"] += t3 - t1
        else:
            t["first_within"] = t2 - t1
        p_old.append(np.stack([x.quantities[Quantity.POWER_ACTIVE_TOTAL] for x in old], axis=1))
        p_new.append(np.stack([x.quantities[Quantity.POWER_ACTIVE_TOTAL] for x in new], axis=1))
    assert hz.size == homes
    n_old, share_old = boundary_share(np.concatenate(p_old, axis=1))
    n_new, share_new = boundary_share(np.concatenate(p_new, axis=1))
    per = 1e3 / (steps - 1)
    return {"old_ms": t["old"] * per, "new_ms": t["new"] * per, "within_ms": t["within"] * per,
            "first_within_ms": t["first_within"] * 1e3, "changes_old": n_old, "share_old": share_old,
            "changes_new": n_new, "share_new": share_new}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--homes", type=int, default=100)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    runs = [run(args.homes, args.steps) for _ in range(args.rounds)]
    best = {k: min(r[k] for r in runs) for k in ("old_ms", "new_ms", "within_ms", "first_within_ms")}
    ratios = sorted(r["new_ms"] / r["old_ms"] for r in runs)
    print(f"{args.homes} 1 Hz meters, 1-min steps, {args.steps} steps, best of {args.rounds} (ms per step):")
    print(f"  old (repeat the step's V, P): {best['old_ms']:.2f}")
    print(f"  new (own demand, loop impedance): {best['new_ms']:.2f}, of which the within-step part "
          f"{best['within_ms']:.3f}; ratio new/old per run: {', '.join(f'{x:.2f}' for x in ratios)}")
    print(f"  loop impedances, once (first step): {best['first_within_ms']:.1f}")
    r = runs[0]
    print(f"  changes > 20 W in the hour: old {r['changes_old']} ({r['share_old']:.1%} on a step boundary), "
          f"new {r['changes_new']} ({r['share_new']:.1%} on a step boundary)")


if __name__ == "__main__":
    main()
