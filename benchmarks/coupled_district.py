"""A district run coupled over HELICS (``grid.coupling: helics``) on 1, 2 and 4 partitions, against the uncoupled run.

Usage (from the repo root, with the ``dev`` extra for ``helics``):
``python benchmarks/coupled_district.py [scenarios/district-40.yaml] [--steps 30] [--partitions 1 2 4]``.

Every run is a whole ``gridloop run`` (embedded Mosquitto and platform, SQLite store): the uncoupled reference in
one process (the district solved as one net), then ``--workers N`` coupled. Printed per run: wall time, the
step loop's time (coupled: the MV federate's steps, from its first grant to its last solve, which the slowest
partition paces; uncoupled: its loop_wall_s), throughput in steps per second of loop and its ratio to the
coupled run on 1 partition and to the uncoupled run, whether the stored readings equal those of
coupled N=1 and of the uncoupled run (SHA-256 over the stored readings' values), and the largest bus voltage deviation
from the uncoupled run (recorded series, float32; the MV root bus from the MV federate's report).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from gridloop.engine.run import RunOptions, run_scenario
from gridloop.engine.workers import run_workers
from gridloop.platform.store.sqlite.values import stored_values
from gridloop.scenario.loader import load_scenario


def digest(run_dir: Path) -> tuple[str, int]:
    rows = stored_values(str(run_dir / "store.db"))  # values, not their packing (which follows ingest's batches)
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16], len(rows)


def coupled_vm(run_dir: Path, columns: pd.Index) -> pd.DataFrame:
    """Each bus's voltage from the partition that solved it, the MV-only buses from the MV federate."""
    vm = pd.DataFrame(np.nan, index=range(0), columns=columns)
    for part in sorted(p for p in run_dir.glob("part-*") if p.is_dir()):
        own = pd.read_parquet(part / "grid_bus_vm_pu.parquet").reset_index(drop=True)
        vm = own if vm.empty else vm.fillna(own)
    mv = json.loads((run_dir / "mv-federate.json").read_text())
    for bus, series in mv["vm_pu"].items():
        name = columns[int(bus)]
        if vm[name].isna().all():
            vm[name] = series
    return vm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("scenario", nargs="?", default="scenarios/district-40.yaml")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--partitions", type=int, nargs="+", default=[1, 2, 4])
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    s = load_scenario(a.scenario)
    s.clock.duration = a.steps * s.clock.step
    s.outputs.progress, s.outputs.plots, s.outputs.series = False, False, True
    work = Path(tempfile.mkdtemp(prefix="coupled-district-"))
    uncoupled = s.model_copy(deep=True)
    uncoupled.grid.coupling = None
    t0 = time.perf_counter()
    ref_summary = run_scenario(uncoupled, RunOptions(out=work / "uncoupled"))
    ref_digest = digest(work / "uncoupled")
    ref_vm = pd.read_parquet(work / "uncoupled" / "grid_bus_vm_pu.parquet").reset_index(drop=True)
    print(f"{s.name}: {ref_summary.meters} meters, {a.steps} steps of {s.clock.step:.0f} s; uncoupled one process: "
          f"wall {time.perf_counter() - t0:.1f} s, loop {ref_summary.loop_wall_s:.1f} s, "
          f"{ref_digest[1]} readings stored, digest {ref_digest[0]}")
    s.grid.coupling = "helics"
    path = work / f"{s.name}-coupled.yaml"
    path.write_text(yaml.safe_dump(s.model_dump(mode="json", exclude_none=True)))
    scenario = load_scenario(path)
    base = None
    for n in a.partitions:
        out = work / f"coupled-{n}"
        t0 = time.perf_counter()
        summary = run_workers(path, scenario, RunOptions(out=out, progress=False), n)
        wall = time.perf_counter() - t0
        # the coupled steps' own time, on the MV federate's clock (from its first grant: a partition that was
        # built first waits for the others in its first step, which its loop_wall_s would count)
        loop = sum(json.loads((out / "mv-federate.json").read_text())["step_s"])
        d = digest(out)
        base = base or (d, a.steps / loop)
        vm = coupled_vm(out, ref_vm.columns)
        dv = float(np.nanmax(np.abs(vm.to_numpy(dtype=float) - ref_vm.to_numpy(dtype=float))))
        print(f"coupled {n} partition(s) + MV federate: wall {wall:.1f} s, loop {loop:.1f} s, "
              f"{a.steps / loop:.2f} steps/s = {a.steps / loop / base[1]:.2f}x coupled N=1, "
              f"{ref_summary.loop_wall_s / loop:.2f}x uncoupled; readings {d[1]} (sampled "
              f"{summary.messages.readings_sampled}), "
              f"digest {d[0]} (= coupled N=1: {d == base[0]}, = uncoupled: {d == ref_digest}); "
              f"max |dV| vs uncoupled {dv:.1e} pu over {int(vm.notna().to_numpy().sum())} bus-steps")
    print(f"(run directories in {work})")


if __name__ == "__main__":
    main()
