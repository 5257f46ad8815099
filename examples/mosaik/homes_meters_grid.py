"""gridloop's homes and meters on gridloop's grid, in a mosaik scenario; the meters' DIA publishes to a platform.

    python homes_meters_grid.py [--steps 300] [--out runs/mosaik-homes] [--process]
                                [--broker mqtt://HOST:PORT --api-url URL --api-key KEY]

Homes (HouseholdFleet) feed the grid's loads and their meters; every meter reads its bus's voltage; a collector
keeps the bus voltages (``bus_vm_pu.csv`` in the output directory). The broker and platform are gridloop's own,
embedded for the run as in ``gridloop run``, or a running platform's (``--broker``, ``--api-url``, ``--api-key``:
the tenant's key). ``--process``: the gridloop simulators run as their own processes.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import mosaik
import pandas as pd

from gridloop.engine.run import RunServices
from gridloop.results.stored import wait_stored
from gridloop.scenario.loader import load_scenario
from gridloop.stage import ms

HERE = Path(__file__).resolve().parent


def sim_config(process: bool) -> dict:
    """gridloop's adapters in this process (``python``) or each in its own (``cmd``); the collector is local."""
    if process:
        gridloop = {name: {"cmd": f"gridloop mosaik-sim {kind} %(addr)s"}
                    for name, kind in (("Grid", "grid"), ("Homes", "households"), ("Meters", "meters"))}
    else:
        gridloop = {"Grid": {"python": "gridloop.mosaik:Grid"}, "Homes": {"python": "gridloop.mosaik:HouseholdFleet"},
                    "Meters": {"python": "gridloop.mosaik:Meters"}}
    return {**gridloop, "Collector": {"python": "collector:Collector"}}


def build(world: mosaik.World, scenario: Path, services: RunServices, out: Path, homes_count: int) -> None:
    """Homes → loads and meters, buses → meters and the collector."""
    user, password = services.credentials or (None, None)
    grid = world.start("Grid").Grid(scenario=str(scenario))
    homes = world.start("Homes", scenario=str(scenario)).Home.create(homes_count)
    meters = world.start("Meters", scenario=str(scenario), broker=services.broker_uri, api_url=services.api.base_url,
                         api_key=services.api.api_key, mqtt_username=user, mqtt_password=password,
                         outbox=str(out / "outbox-mosaik.db"))
    children = {e.eid: e for e in grid.children}
    for home in homes:
        info = home.extra_info
        bus = children[f"Bus-{info['bus']}"]
        world.connect(home, children[f"Load-{info['load']}"], "p_mw", "q_mvar")
        meter = meters.Meter(bus=bus.extra_info["name"], phase=info["phase"], vn_kv=bus.extra_info["vn_kv"])
        world.connect(bus, meter, "vm_pu")
        world.connect(home, meter, "p_mw", "q_mvar", "p_a_w", "p_b_w", "p_c_w", "q_a_var", "q_b_var", "q_c_var")
    monitor = world.start("Collector", out=str(out / "bus_vm_pu.csv")).Monitor()
    for bus in (e for e in grid.children if e.type == "Bus"):
        world.connect(bus, monitor, "vm_pu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=HERE / "dorfnetz.yaml")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("runs/mosaik-homes"))
    parser.add_argument("--homes", type=int, default=50, help="homes to simulate (the scenario's households.count)")
    parser.add_argument("--process", action="store_true", help="start gridloop's simulators as processes")
    parser.add_argument("--broker", help="a running platform's broker (default: an embedded one)")
    parser.add_argument("--api-url", help="a running platform's REST API (default: an embedded platform)")
    parser.add_argument("--api-key", default=os.environ.get("GRIDLOOP_API_KEY"), help="the tenant's API key")
    args = parser.parse_args()
    s = load_scenario(args.scenario)
    s.platform.broker, s.platform.api_url, s.platform.api_key = args.broker, args.api_url, args.api_key
    args.out.mkdir(parents=True, exist_ok=True)
    with RunServices(s, args.out) as services:
        world = mosaik.World(sim_config(args.process), debug=False)
        build(world, args.scenario, services, args.out, args.homes)
        world.run(until=int(args.steps * s.clock.step), print_progress=False)
        start_ms = ms(pd.Timestamp(s.clock.start).timestamp())
        due = args.homes * len(range(0, args.steps * int(s.clock.step), int(s.meters.interval)))
        stored = wait_stored(services.api, start_ms, start_ms + ms(args.steps * s.clock.step), due, timeout_s=60)
    print(json.dumps({"steps": args.steps, "meters": args.homes, "readings_due": due, "readings_stored": stored}))


if __name__ == "__main__":
    main()
