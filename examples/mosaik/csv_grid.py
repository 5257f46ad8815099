"""mosaik-csv drives gridloop's grid: a CSV of every load's P and Q (gridloop's demand, exported) replayed in mosaik.

    python csv_grid.py [--steps 300] [--out runs/mosaik-csv] [--process]

The CSV is written first from the scenario (``gridloop.mosaik.demand_csv``); mosaik-csv's ``CSV`` simulator
replays it into the loads of gridloop's ``Grid``; a collector keeps the bus voltages (``bus_vm_pu.csv``).
``--process``: the grid runs as its own process (``gridloop mosaik-sim grid``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import mosaik

from gridloop.mosaik.demand_csv import MODEL, csv_start, write_demand_csv
from gridloop.scenario.loader import load_scenario

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=HERE / "dorfnetz.yaml")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("runs/mosaik-csv"))
    parser.add_argument("--process", action="store_true", help="start gridloop's grid as its own process")
    args = parser.parse_args()
    s = load_scenario(args.scenario)
    args.out.mkdir(parents=True, exist_ok=True)
    datafile = args.out / "demand.csv"
    labels = write_demand_csv(s, args.steps, datafile)
    grid_sim = {"cmd": "gridloop mosaik-sim grid %(addr)s"} if args.process else {"python": "gridloop.mosaik:Grid"}
    world = mosaik.World({"CSV": {"python": "mosaik_csv:CSV"}, "Grid": grid_sim,
                          "Collector": {"python": "collector:Collector"}})
    demand = getattr(world.start("CSV", sim_start=csv_start(s), datafile=str(datafile)), MODEL)()
    grid = world.start("Grid").Grid(scenario=str(args.scenario))
    loads = {e.eid: e for e in grid.children if e.type == "Load"}
    for label in labels:
        world.connect(demand, loads[f"Load-{label}"], (f"P_{label}", "p_mw"), (f"Q_{label}", "q_mvar"))
    monitor = world.start("Collector", out=str(args.out / "bus_vm_pu.csv")).Monitor()
    for bus in (e for e in grid.children if e.type == "Bus"):
        world.connect(bus, monitor, "vm_pu")
    wall0 = time.perf_counter()
    world.run(until=int(args.steps * s.clock.step), print_progress=False)
    print(json.dumps({"steps": args.steps, "loads": len(labels), "wall_s": round(time.perf_counter() - wall0, 3)}))


if __name__ == "__main__":
    main()
