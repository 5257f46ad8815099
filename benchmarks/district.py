"""Build and step time of a SimBench district scenario, against one SimBench LV substation measured in the same run.

Usage (from the repo root): ``python benchmarks/district.py [scenarios/district-40.yaml] [--steps 30]``.
Builds the scenario's substation unit (network, synthetic homes, meters) and runs its grid stage for some steps;
the reference is the same scenario with ``grid.network`` set to one of its LV grids (``lv_types[-1]``).
"""

from __future__ import annotations

import argparse
import time

from gridloop.engine.substation_unit import build_unit
from gridloop.grid_models.networks import grid_network
from gridloop.scenario.loader import load_scenario
from gridloop.stage import Clock, ms


def measure(s, steps: int) -> dict[str, float]:
    t0 = time.perf_counter()
    grid_network(s.grid, s.seed)
    t1 = time.perf_counter()
    unit = build_unit(s, 0)
    t2 = time.perf_counter()
    period = ms(s.clock.step)
    for k in range(steps):
        unit.grid.step(Clock(k * period, period), {})
    t3 = time.perf_counter()
    return {"net_s": t1 - t0, "unit_s": t2 - t1, "step_ms": (t3 - t2) / steps * 1000, "homes": len(unit.meters),
            "buses": len(unit.grid.net.bus)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", nargs="?", default="scenarios/district-40.yaml")
    ap.add_argument("--steps", type=int, default=30)
    a = ap.parse_args()
    s = load_scenario(a.scenario)
    ref = s.model_copy(deep=True)
    ref.grid.network, ref.grid.tap_control = s.grid.lv_types[-1], None
    ref_m, dist_m = measure(ref, a.steps), measure(s, a.steps)
    for name, m in ((f"reference {ref.grid.network}", ref_m), (f"{s.name} ({s.grid.substations} substations, "
                                                                f"{s.grid.mv})", dist_m)):
        print(f"{name}: {m['buses']} buses, {m['homes']} homes; network {m['net_s']:.2f} s, unit build "
              f"{m['unit_s']:.2f} s, grid step {m['step_ms']:.2f} ms")
    print(f"ratios district/reference: homes {dist_m['homes'] / ref_m['homes']:.1f}x, unit build "
          f"{dist_m['unit_s'] / ref_m['unit_s']:.1f}x, grid step {dist_m['step_ms'] / ref_m['step_ms']:.1f}x")


if __name__ == "__main__":
    main()
