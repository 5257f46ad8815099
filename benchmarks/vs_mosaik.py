"""gridloop against mosaik on one problem: Kerber Dorfnetz, 50 homes, 1,440 one-minute steps, a meter per home.

Run (mosaik 3.7 needs Python >= 3.12: the environment scripts/test.sh builds, $GRIDLOOP_MOSAIK_PYTHON):
    PYTHONPATH=. $GRIDLOOP_MOSAIK_PYTHON benchmarks/vs_mosaik.py [--steps 1440] [--write]

(a) mosaik 3.7 + mosaik-pandapower-2 in process, (b) mosaik with gridloop's Grid adapter, both fed the same
per-step household P and Q (gridloop's demand, exported and replayed by a mosaik ``Households`` simulator) with
a meter simulator reading each home's bus voltage; (c) ``gridloop run`` of the same scenario (its homes, meters
publishing over MQTT to its platform's store). The same net (Kerber's cable types drawn from the scenario's
seed) on every side; the home voltages are checked to agree. Then real time at 60 s simulated per 50 ms wall.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shlex
import sys
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=FutureWarning)

import mosaik  # noqa: E402
import mosaik_api_v3  # noqa: E402
import pandapower as pp  # noqa: E402
import pandas as pd  # noqa: E402
from loguru import logger  # noqa: E402

from gridloop.engine.run import RunOptions, run_scenario  # noqa: E402
from gridloop.engine.step_loop import StepLoop  # noqa: E402
from gridloop.grid_models.networks import load_network  # noqa: E402
from gridloop.grid_models.pgm_solver import PgmSolver  # noqa: E402
from gridloop.mosaik.demand_csv import demand_series  # noqa: E402
from gridloop.profiles.demand import build_demand  # noqa: E402
from gridloop.scenario.loader import load_scenario  # noqa: E402

SCENARIO = ROOT / "examples" / "mosaik" / "dorfnetz.yaml"
STEP_S = 60
REALTIME_WALL_S = 0.05  # 60 s of simulated time in 50 ms
LATE_S = 0.05  # a step starting more than this after its slot is late (gridloop's Pacer tolerance)
RESULTS = ROOT / "benchmarks" / "RESULTS_mosaik.md"


class Households(mosaik_api_v3.Simulator):
    """Replays per-step P/Q of every load from an .npz file; one Home per load."""

    def __init__(self) -> None:
        super().__init__({"api_version": "3.0", "type": "time-based", "models": {"Home": {
            "public": True, "params": [], "attrs": ["P_load[MW]", "Q_load[MVar]", "p_mw", "q_mvar"]}}})

    def init(self, sid, time_resolution=1.0, demand="", step_size=STEP_S):
        data = np.load(demand)
        self.p, self.q, self.step_size, self.k = data["p"], data["q"], step_size, 0
        return self.meta

    def create(self, num, model):
        return [{"eid": f"Home-{i}", "type": model} for i in range(num)]

    def step(self, time, inputs, max_advance):
        self.k = time // self.step_size
        return time + self.step_size

    def get_data(self, outputs):
        k = self.k
        return {eid: {a: float((self.p if a[0] in "Pp" else self.q)[k, int(eid[5:])]) for a in attrs}
                for eid, attrs in outputs.items()}


class VoltageMeters(mosaik_api_v3.Simulator):
    """Meters reading their bus's voltage each step; keeps them (and each step's lag behind real time) in .npz."""

    def __init__(self) -> None:
        super().__init__({"api_version": "3.0", "type": "time-based", "models": {"Meter": {
            "public": True, "params": [], "attrs": ["Vm[pu]", "vm_pu"]}}})

    def init(self, sid, time_resolution=1.0, out="", steps=1440, rt_factor=0.0, step_size=STEP_S):
        self.out, self.rt_factor, self.step_size = out, rt_factor, step_size
        self.vm: np.ndarray | None = None
        self.steps, self.lag, self.n, self.wall0 = steps, np.zeros(steps), 0, None
        return self.meta

    def create(self, num, model):
        self.n += num
        return [{"eid": f"Meter-{i}", "type": model} for i in range(self.n - num, self.n)]

    def step(self, time, inputs, max_advance):
        now = time_perf()
        if self.wall0 is None:
            self.wall0 = now
            self.vm = np.full((self.steps, self.n), np.nan)
        k = time // self.step_size
        self.lag[k] = now - (self.wall0 + time * self.rt_factor)
        for eid, attrs in inputs.items():
            for values in attrs.values():
                self.vm[k, int(eid[6:])] = next(iter(values.values()))
        return time + self.step_size

    def get_data(self, outputs):
        return {}

    def finalize(self):
        np.savez(self.out, vm=self.vm, lag=self.lag)


def time_perf() -> float:
    return time.perf_counter()


class Problem:
    """The shared problem: the scenario (a meter reading every step), its net, its homes, the exported demand."""

    def __init__(self, steps: int, work: Path) -> None:
        text = SCENARIO.read_text().replace("interval: 5min", f"interval: {STEP_S}s")
        self.scenario_file = work / "scenario.yaml"
        self.scenario_file.write_text(text)
        self.s = load_scenario(self.scenario_file)
        self.steps, self.work = steps, work
        s = self.s
        self.net = load_network(s.grid.network, seed=s.seed)
        _, p, q = demand_series(s, steps)
        self.demand_file = work / "demand.npz"
        np.savez(self.demand_file, p=p, q=q)
        self.load_bus = self.net.load.bus.to_numpy()
        homes = build_demand(load_network(s.grid.network, seed=s.seed), s.households, s.clock.start, STEP_S * 1000,
                             s.seed)
        self.metered = homes.load_index.tolist()  # positions in net.load of the scenario's 50 homes

    def home_bus_positions(self) -> np.ndarray:
        return self.net.bus.index.get_indexer(self.load_bus[self.metered])


def run_mosaik(problem: Problem, side: str, rt_factor: float | None = None) -> dict:
    """(a) ``side="pandapower"``: mosaik-pandapower-2; (b) ``side="gridloop"``: gridloop's Grid adapter."""
    out = problem.work / f"meters-{side}-{'rt' if rt_factor else 'fast'}.npz"
    wall0 = time.perf_counter()
    config = {"Households": {"python": "vs_mosaik:Households"}, "Meters": {"python": "vs_mosaik:VoltageMeters"},
              "Grid": {"python": "mosaik_components.pandapower:Simulator" if side == "pandapower"
                       else "gridloop.mosaik:Grid"}}
    world = mosaik.World(config)
    homes = world.start("Households", demand=str(problem.demand_file)).Home.create(len(problem.load_bus))
    meters = world.start("Meters", out=str(out), steps=problem.steps, rt_factor=rt_factor or 0.0).Meter.create(
        len(problem.metered))
    if side == "pandapower":
        net = load_network(problem.s.grid.network, seed=problem.s.seed)
        net.load[["p_mw", "q_mvar"]] = 0.0  # every load's power comes from the Households, at its bus
        grid = world.start("Grid", step_size=STEP_S).Grid(net=net)
        buses = {e.eid: e for e in grid.children if e.type == "Bus"}
        for i, bus in enumerate(problem.load_bus):
            world.connect(homes[i], buses[f"Bus-{bus}"], "P_load[MW]", "Q_load[MVar]")
        for m, i in enumerate(problem.metered):
            world.connect(buses[f"Bus-{problem.load_bus[i]}"], meters[m], "Vm[pu]")
    else:
        grid = world.start("Grid").Grid(scenario=str(problem.scenario_file))
        children = {e.eid: e for e in grid.children}
        for i, label in enumerate(problem.net.load.index):
            world.connect(homes[i], children[f"Load-{label}"], "p_mw", "q_mvar")
        for m, i in enumerate(problem.metered):
            world.connect(children[f"Bus-{problem.load_bus[i]}"], meters[m], "vm_pu")
    runpp = _timed_runpp()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        run0 = time.perf_counter()
        world.run(until=problem.steps * STEP_S, rt_factor=rt_factor, print_progress=False)
        run_s = time.perf_counter() - run0
    pp.runpp = runpp.original
    data = np.load(out)
    return {"side": side, "step_ms": run_s / problem.steps * 1000, "wall_s": time.perf_counter() - wall0,
            "runpp_ms": runpp.total_s / problem.steps * 1000, "vm": data["vm"],
            "late_steps": int((data["lag"] > LATE_S).sum()), "max_lag_s": float(data["lag"].max()),
            "warnings": sum("too slow" in str(w.message) for w in caught)}


class _timed_runpp:  # a callable that stands in for pandapower.runpp
    """Wraps pandapower.runpp to add up the time mosaik-pandapower-2 spends in it."""

    def __init__(self) -> None:
        self.original, self.total_s = pp.runpp, 0.0
        pp.runpp = self

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.original(*args, **kwargs)
        finally:
            self.total_s += time.perf_counter() - t0


def run_gridloop(problem: Problem, realtime: bool) -> dict:
    """(c) ``gridloop run``: its own homes, grid, meters, DIA, broker and platform store.

    Per step: the step loop's own time (every stage, publishing to the broker included); ``loop_ms`` adds the
    wait at the end until the platform has acknowledged every reading as stored.
    """
    out = problem.work / f"gridloop-{'rt' if realtime else 'fast'}"
    speed = STEP_S / REALTIME_WALL_S if realtime else None
    ticks, solves = _TimedTicks(), _TimedSolves()
    try:
        summary = run_scenario(problem.s, RunOptions(out=out, until=problem.steps * STEP_S, progress=False,
                                                     realtime=realtime or None, speed=speed))
    finally:
        ticks.restore()
        solves.restore()
    vm = pd.read_parquet(out / "grid_bus_vm_pu.parquet").to_numpy(dtype=float)[:, problem.home_bus_positions()]
    return {"side": "gridloop run", "step_ms": ticks.total_s / problem.steps * 1000, "wall_s": summary.wall_s,
            "loop_ms": summary.loop_wall_s / problem.steps * 1000, "vm": vm,
            "late_steps": summary.realtime.late_steps, "max_lag_s": summary.realtime.max_lag_s, "warnings": 0,
            "stored": summary.messages.readings_stored, "sampled": summary.messages.readings_sampled,
            "solve_ms": solves.total_s / problem.steps * 1000}


class _TimedSolves:
    """Adds up the wall time of the power flow (PgmSolver.solve, the scenario's backend): the step beside it is
    the engine's cost (issue #13: at most 1 ms per step for 50 homes; demand and meters count as engine)."""

    def __init__(self) -> None:
        self.original, self.total_s = PgmSolver.solve, 0.0
        timed = self

        def solve(stage: PgmSolver, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return timed.original(stage, *args, **kwargs)
            finally:
                timed.total_s += time.perf_counter() - t0

        PgmSolver.solve = solve

    def restore(self) -> None:
        PgmSolver.solve = self.original


class _TimedTicks:
    """Adds up the wall time of StepLoop.tick (real-time pacing excluded: the Pacer's wait is taken out)."""

    def __init__(self) -> None:
        self.original, self.total_s = StepLoop.tick, 0.0
        timed = self

        def tick(loop: StepLoop, now_ms: int) -> None:
            pacer, loop.pacer = loop.pacer, None
            if pacer is not None:
                pacer.wait(now_ms / 1000)
            t0 = time.perf_counter()
            try:
                timed.original(loop, now_ms)
            finally:
                loop.pacer = pacer
                timed.total_s += time.perf_counter() - t0

        StepLoop.tick = tick

    def restore(self) -> None:
        StepLoop.tick = self.original


def _agreement(results: dict[str, dict]) -> dict[str, float]:
    """Largest difference of the home voltages between each pair of sides, pu."""
    names = list(results)
    return {f"{x} vs {y}": float(np.abs(results[x]["vm"] - results[y]["vm"]).max())
            for k, x in enumerate(names) for y in names[k + 1:]}


def _report(fast: dict[str, dict], rt: dict[str, dict], agree: dict[str, float], steps: int) -> str:
    a, c = fast["a"], fast["c"]
    lines = ["| side | per step, ms | whole run, s | (a) / side per step | (a) / side whole run |",
             "|---|---|---|---|---|"]
    for key, r in fast.items():
        lines.append(f"| ({key}) {r['side']} | {r['step_ms']:.2f} | {r['wall_s']:.2f} | "
                     f"{a['step_ms'] / r['step_ms']:.1f}x | {a['wall_s'] / r['wall_s']:.1f}x |")
    lines += ["", f"(a) runpp {a['runpp_ms']:.2f} ms/step ({a['runpp_ms'] / a['step_ms']:.0%} of its step); "
              f"(c) sampled {c['sampled']:,} readings, stored {c['stored']:,} in the platform; its loop with the wait "
              f"for the platform's acknowledgement of the last readings {c['loop_ms']:.2f} ms/step; the power flow "
              f"(PgmSolver.solve) {c['solve_ms']:.2f} ms/step, so the engine beside it "
              f"{c['step_ms'] - c['solve_ms']:.2f} ms/step.",
              "Home voltages, largest difference over " + f"{steps} steps x {a['vm'].shape[1]} homes: "
              + ", ".join(f"{k} {v:.1e} pu" for k, v in agree.items()) + "."]
    if rt:
        lines += ["", f"Real time, {STEP_S} s simulated per {REALTIME_WALL_S * 1000:.0f} ms wall "
                  f"(late: a step starting > {LATE_S * 1000:.0f} ms after its slot):", "",
                  "| side | late steps | max lag, s | mosaik 'too slow' warnings |", "|---|---|---|---|"]
        lines += [f"| ({k}) {r['side']} | {r['late_steps']} | {r['max_lag_s']:.3f} | {r['warnings']} |"
                  for k, r in rt.items()]
    return "\n".join(lines)


def _environment() -> str:
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("mosaik", "mosaik-api-v3", "mosaik-pandapower-2",
                                                                 "pandapower", "power-grid-model"))
    return f"Python {platform.python_version()}, {versions}; numba installed: {pp.NUMBA_INSTALLED}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1440)
    parser.add_argument("--skip-realtime", action="store_true")
    parser.add_argument("--write", action="store_true", help=f"append the results to {RESULTS.name}")
    args = parser.parse_args()
    logger.remove()  # mosaik's and mosaik-pandapower-2's log lines
    with tempfile.TemporaryDirectory(prefix="vs-mosaik-") as tmp:
        problem = Problem(args.steps, Path(tmp))
        fast = {"a": run_mosaik(problem, "pandapower"), "b": run_mosaik(problem, "gridloop"),
                "c": run_gridloop(problem, realtime=False)}
        rt = {} if args.skip_realtime else {
            "a": run_mosaik(problem, "pandapower", REALTIME_WALL_S / STEP_S),
            "b": run_mosaik(problem, "gridloop", REALTIME_WALL_S / STEP_S), "c": run_gridloop(problem, realtime=True)}
    agree = _agreement(fast)
    command = "PYTHONPATH=. $GRIDLOOP_MOSAIK_PYTHON benchmarks/vs_mosaik.py " + shlex.join(sys.argv[1:])
    text = (f"\n## {dt.date.today()}: `{command.strip()}`\n\n{_environment()}; Kerber Dorfnetz, "
            f"{len(problem.metered)} homes, {args.steps} one-minute steps.\n\n{_report(fast, rt, agree, args.steps)}\n")
    print(text)
    if args.write:
        with RESULTS.open("a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
