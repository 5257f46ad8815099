"""The step loop's own cost: one substation's real stages stepped without broker or platform, timed per stage.

The DIA, controller and REST client are stand-ins that do nothing, so what is left is the engine (loop,
scenario events, commands, publishing, recording) and the models it drives (demand, power flow, meters).
Prints ms per step for each stage (the grid stage with its power flow apart) and CPU ms per step for the whole
loop, best of ``--repeat`` runs.
Run:  python benchmarks/step_loop.py [scenarios/quickstart.yaml] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from gridloop.engine.step_loop import StepLoop
from gridloop.engine.substation_unit import build_unit
from gridloop.scenario import load_scenario
from gridloop.stage import Clock, Outputs, ms

ROOT = Path(__file__).resolve().parents[1]


class _Nothing:
    """DIA, controller and REST client at once: accepts everything, does nothing."""

    arrivals = 0

    def publish(self, *samples) -> None: ...

    def publish_events(self, events) -> None: ...

    def apply_pending(self, sim_time_s: float) -> int:
        return 0

    def send_command(self, device: str, name: str, args: dict) -> str:
        return ""


class _Timed:
    def __init__(self, stage, cost: dict[str, float]) -> None:
        self.stage, self.cost, self.period_ms, self.offset_ms = stage, cost, stage.period_ms, stage.offset_ms
        self.name = type(stage).__name__ + (" (events)" if getattr(stage, "for_events", False) else "")

    def step(self, clock: Clock, inputs: Outputs) -> object:
        t0 = time.perf_counter()
        out = self.stage.step(clock, inputs)
        self.cost[self.name] += time.perf_counter() - t0
        return out


def run_once(scenario: Path, timed: bool) -> tuple[int, float, dict[str, float]]:
    s = load_scenario(scenario)
    s.events = []  # scenario commands need the platform
    unit = build_unit(s, 0)
    cost: dict[str, float] = defaultdict(float)
    solver: Any = unit.grid.solver
    solve = solver.solve

    def timed_solve():
        t0 = time.perf_counter()
        state = solve()
        cost["  of which power flow"] += time.perf_counter() - t0
        return state

    if timed:
        solver.solve = timed_solve
    nothing: Any = _Nothing()
    stages = unit.pipeline(nothing, nothing, nothing, owned=None, lead=True)
    loop = StepLoop([[_Timed(st, cost) for st in stages] if timed else stages])
    n = int(round(s.clock.duration / s.clock.step))
    cpu0 = time.process_time()
    loop.run(n * ms(s.clock.step))
    return n, time.process_time() - cpu0, cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", type=Path, default=ROOT / "scenarios" / "quickstart.yaml")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    best_cpu, best = float("inf"), dict[str, float]()
    for _ in range(args.repeat):
        n, cpu, _ = run_once(args.scenario, timed=False)
        best_cpu = min(best_cpu, cpu / n)
        n, _, cost = run_once(args.scenario, timed=True)
        best = {k: min(best.get(k, float("inf")), v / n) for k, v in cost.items()}
    print(f"{args.scenario.name}: {n} steps, whole loop {best_cpu * 1000:.3f} CPU ms/step (best of {args.repeat})")
    for name, seconds in best.items():
        print(f"  {name:28s} {seconds * 1000:.3f} ms/step")


if __name__ == "__main__":
    main()
