"""Fixed cost of a whole `gridloop run` process: process wall time minus the step loop, cold and warm cache.

Runs the quick start (`gridloop run scenarios/quickstart.yaml --no-progress`) as a subprocess, round after
round, alternating in each round:
  - import: `python -c 'import gridloop.cli'`, the floor every command pays (interpreter and CLI);
  - no cache: the run with `GRIDLOOP_NET_CACHE=0`, as before the network cache: pandapower is imported and
    the net built from the SimBench pickle;
  - cold: the network cache emptied before the run (the run builds the net with pandapower and writes it);
  - warm: the cache as the previous run left it (the run reads the net's tables, no pandapower);
  - ref (with ``--reference-tree DIR``): the same run from another checkout (e.g. main), same interpreter.
Every run gets its own output directory and the same private cache directory (SimBench's pickle stays warm).
Prints per mode the median process wall, loop time (summary ``loop_wall_s``), fixed cost = wall - loop and
the summary's ``wall_s``, the ratios against "no cache" measured in the same rounds, and checks that every
run produced the same readings and grid series (Parquet tables equal, stored readings' digest, summary
without its timings).
Run:  python benchmarks/fixed_cost.py [--rounds 3] [--reference-tree /path/to/main]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from gridloop.platform.store.sqlite.values import stored_values

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "quickstart.yaml"
SERIES = ("meter_readings.parquet", "grid_bus_vm_pu.parquet", "grid_line_loading_percent.parquet",
          "grid_trafo_loading_percent.parquet")
TIMINGS = {"wall_s", "loop_wall_s", "queryable_latency"}


def run_digest(run_dir: Path) -> str:
    """One digest of what a run produced: its series' tables, the stored readings and the summary's numbers."""
    h = hashlib.sha256()
    for name in SERIES:
        table = pq.read_table(run_dir / name)
        h.update(name.encode() + repr(table.schema).encode() + repr(table.to_pydict()).encode())
    h.update(repr(stored_values(str(run_dir / "store.db"))).encode())  # values, not their packing
    summary = {k: v for k, v in json.loads((run_dir / "summary.json").read_text()).items() if k not in TIMINGS}
    summary["kpis"].pop("command_latency_ms", None)  # wall-clock times too
    h.update(json.dumps(summary, sort_keys=True).encode())
    return h.hexdigest()[:16]


def _env(tree: Path, cache: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "GRIDLOOP_CACHE": str(cache), **extra}


def timed_run(tree: Path, cache: Path, out: Path, **extra: str) -> dict:
    """One quick start as a subprocess: its process wall time and the summary's times."""
    cmd = [sys.executable, "-m", "gridloop", "run", str(SCENARIO), "--out", str(out), "--no-progress"]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=_env(tree, cache, **extra), check=True, capture_output=True, cwd=tree)
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    loop = summary["loop_wall_s"]
    return {"process_s": wall, "loop_s": loop, "fixed_s": wall - loop, "wall_s": summary["wall_s"],
            "digest": run_digest(out)}


def timed_import(tree: Path, cache: Path) -> dict:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import gridloop.cli"], env=_env(tree, cache), check=True, cwd=tree)
    wall = time.perf_counter() - t0
    return {"process_s": wall, "loop_s": 0.0, "fixed_s": wall, "wall_s": 0.0, "digest": ""}


def one_round(k: int, tmp: Path, cache: Path, reference: Path | None) -> dict[str, dict]:
    nets = cache / "nets"
    got = {"import": timed_import(ROOT, cache)}
    got["no cache"] = timed_run(ROOT, cache, tmp / f"nocache{k}", GRIDLOOP_NET_CACHE="0")
    shutil.rmtree(nets, ignore_errors=True)
    got["cold"] = timed_run(ROOT, cache, tmp / f"cold{k}")
    got["warm"] = timed_run(ROOT, cache, tmp / f"warm{k}")
    if reference is not None:
        got["ref"] = timed_run(reference, cache, tmp / f"ref{k}")
    return got


def report(rounds: list[dict[str, dict]]) -> None:
    modes = list(rounds[0])
    refs = [m for m in ("no cache", "ref") if m in modes]
    print("| mode | process wall s | loop s | fixed s (wall - loop) | summary wall_s |"
          + "".join(f" fixed / {m} (per round) |" for m in refs))
    print("|---|---|---|---|---|" + "---|" * len(refs))
    for mode in modes:
        med = {f: statistics.median(r[mode][f] for r in rounds) for f in ("process_s", "loop_s", "fixed_s", "wall_s")}
        fixed = ", ".join(f"{r[mode]['fixed_s']:.2f}" for r in rounds)
        ratios = ""
        for m in refs:
            per = [r[mode]["fixed_s"] / r[m]["fixed_s"] for r in rounds]
            ratios += f" {statistics.median(per):.2f} ({', '.join(f'{x:.2f}' for x in per)}) |"
        print(f"| {mode} | {med['process_s']:.2f} | {med['loop_s']:.2f} | **{med['fixed_s']:.2f}** ({fixed}) | "
              f"{med['wall_s']:.2f} |{ratios}")
    digests = {r[m]["digest"] for r in rounds for m in modes if m != "import"}
    print(f"\nrun digests (series, stored readings, summary without timings): {sorted(digests)} -> "
          f"{'identical' if len(digests) == 1 else 'DIFFERENT'}")
    if len(digests) != 1:
        raise SystemExit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reference-tree", type=Path, help="another checkout run alternately (e.g. main)")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"# {os.cpu_count()} cores, load {load:.1f}; {args.rounds} rounds; python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="fixed-cost-") as tmp_name:
        tmp = Path(tmp_name)
        cache = tmp / "cache"
        timed_run(ROOT, cache, tmp / "warmup")  # SimBench's pickle and the OS file cache warm for every mode
        rounds = [one_round(k, tmp, cache, args.reference_tree) for k in range(args.rounds)]
    report(rounds)
    print(f"# load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
