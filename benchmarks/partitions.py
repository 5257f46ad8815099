"""Partition scaling: one multi-substation scenario run by 1, 2 and 4 local workers (`gridloop run --workers N`).

Reference: the same scenario with N = 1, measured in the same run. Every point runs through the embedded
Mosquitto and platform (SQLite), so the partitions share the machine's cores with the broker and the ingest.
Prints, per N: the slowest partition's loop time (stepping until the broker acknowledged every reading), the
whole command's wall time, readings per second for both, and their ratios against N = 1; checks that every
N stored the same readings.
Run:  python benchmarks/partitions.py [--substations 8] [--hours 1] [--step 1s] [--interval 1min] [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import tempfile
from pathlib import Path

from gridloop.engine.run import RunOptions
from gridloop.engine.workers import run_workers
from gridloop.scenario.loader import load_scenario

SCENARIO = """\
name: partition-bench
seed: 11
clock: {{start: "2026-01-15T00:00:00+01:00", duration: {hours}h, step: {step}}}
grid: {{network: 1-LV-urban6--0-sw, substations: {substations}}}
meters: {{interval: {interval}}}
outputs: {{progress: false, plots: false, series: false}}
"""


def stored_digest(run_dir: Path) -> tuple[int, str]:
    with sqlite3.connect(run_dir / "store.db") as db:
        rows = db.execute("SELECT r.dev, r.ts, r.seq, s.names, r.v FROM readings r JOIN shapes s ON s.id = r.shape"
                          " ORDER BY r.dev, r.ts").fetchall()
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--substations", type=int, default=8)
    ap.add_argument("--hours", type=float, default=1)
    ap.add_argument("--interval", default="1min")
    ap.add_argument("--step", default="1s")
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    print(f"# machine: {os.cpu_count()} cores; {args.substations} substations x 102 homes, {args.hours:g} h at "
          f"{args.step} steps, meters every {args.interval}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(SCENARIO.format(hours=args.hours, substations=args.substations, interval=args.interval,
                                        step=args.step))
        scenario = load_scenario(path)
        for n in workers:
            out = Path(tmp) / f"n{n}"
            summary = run_workers(path, scenario, RunOptions(out=out, progress=False), n)
            loop_s = max(p["loop_wall_s"] for p in summary.partitions)
            stored, digest = stored_digest(out)
            rows.append((n, loop_s, summary.wall_s, summary.messages.readings_sampled, stored, digest))
    ref_loop, ref_wall = rows[0][1], rows[0][2]
    print("\n| workers | slowest partition loop s | command wall s | readings | readings/s (loop) | "
          "readings/s (wall) | speed-up loop | speed-up wall | stored digest |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for n, loop_s, wall_s, sampled, stored, digest in rows:
        print(f"| {n} | {loop_s:.1f} | {wall_s:.1f} | {stored:,} | {sampled / loop_s:,.0f} | {stored / wall_s:,.0f} "
              f"| {ref_loop / loop_s:.2f}x | {ref_wall / wall_s:.2f}x | {digest} |")
    same = len({r[5] for r in rows}) == 1 and all(r[3] == r[4] for r in rows)
    print(f"\nidentical stored readings for every N, none lost: {same}")


if __name__ == "__main__":
    main()
