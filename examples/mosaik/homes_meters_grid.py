"""gridloop's homes and meters on gridloop's grid, in a mosaik scenario; the meters' DIA publishes to a platform.

    python homes_meters_grid.py [--steps 300] [--out runs/mosaik-homes] [--process] [--grid mosaik-pandapower]
                                [--broker mqtt://HOST:PORT --api-url URL --api-key KEY]

Homes (HouseholdFleet) feed the grid's loads and their meters; every meter reads its bus's voltage; a collector
keeps the bus voltages (``bus_vm_pu.csv`` in the output directory). The broker and platform are gridloop's own,
embedded for the run as in ``gridloop run``, or a running platform's (``--broker``, ``--api-url``, ``--api-key``:
the tenant's key). ``--process``: the gridloop simulators run as their own processes. ``--grid mosaik-pandapower``:
mosaik-pandapower-2's grid on the same net instead of gridloop's (each home's power into its bus).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mosaik
import pandapower as pp
import pandas as pd

from gridloop.engine.run import RunServices
from gridloop.grid_models.networks import load_network
from gridloop.results.stored import wait_stored
from gridloop.scenario.loader import load_scenario
from gridloop.stage import ms

HERE = Path(__file__).resolve().parent
GRIDLOOP, MOSAIK_PANDAPOWER = "gridloop", "mosaik-pandapower"


def sim_config(process: bool, grid: str) -> dict:
    """gridloop's adapters in this process (``python``) or each in its own (``cmd``); the collector is local."""
    if process:
        config = {name: {"cmd": f"gridloop mosaik-sim {kind} %(addr)s"}
                  for name, kind in (("Grid", "grid"), ("Homes", "households"), ("Meters", "meters"))}
    else:
        config = {"Grid": {"python": "gridloop.mosaik:Grid"}, "Homes": {"python": "gridloop.mosaik:HouseholdFleet"},
                  "Meters": {"python": "gridloop.mosaik:Meters"}}
    if grid == MOSAIK_PANDAPOWER:
        config["Grid"] = {"python": "mosaik_components.pandapower:Simulator"}
    return {**config, "Collector": {"python": "collector:Collector"}}


@dataclass
class GridSide:
    """Where a home's power goes in and where a bus's voltage comes out, on either grid simulator."""

    buses: list  # Bus entities
    load_of: Callable[[dict], tuple[object, tuple]]  # a home's extra_info → (entity, (home attr, grid attr) pairs)
    vm: str  # the bus voltage attribute
    vn_kv: str  # the extra_info key of a bus's nominal voltage


def gridloop_grid(world: mosaik.World, scenario: Path) -> GridSide:
    """gridloop's Grid: each home feeds its own load."""
    grid = world.start("Grid").Grid(scenario=str(scenario))
    children = {e.eid: e for e in grid.children}
    return GridSide([e for e in grid.children if e.type == "Bus"],
                    lambda info: (children[f"Load-{info['load']}"], ("p_mw", "q_mvar")), "vm_pu", "vn_kv")


def mosaik_pandapower_grid(world: mosaik.World, scenario: Path, homes: list, out: Path) -> GridSide:
    """mosaik-pandapower-2's Grid on the same net: each home feeds its bus (its own load element set to 0)."""
    s = load_scenario(scenario)
    net = load_network(s.grid.network, seed=s.seed)
    net.load.loc[[h.extra_info["load"] for h in homes], ["p_mw", "q_mvar"]] = 0.0
    pp.to_json(net, str(out / "net.json"))
    grid = world.start("Grid", step_size=int(s.clock.step)).Grid(json=str(out / "net.json"))
    children = {e.eid: e for e in grid.children}
    pairs = (("p_mw", "P_load[MW]"), ("q_mvar", "Q_load[MVar]"))
    return GridSide([e for e in grid.children if e.type == "Bus"],
                    lambda info: (children[f"Bus-{info['bus']}"], pairs), "Vm[pu]", "nominal voltage [kV]")


def build(world: mosaik.World, args: argparse.Namespace, services: RunServices) -> None:
    """Homes → loads (or buses) and meters, buses → meters and the collector."""
    user, password = services.credentials or (None, None)
    homes = world.start("Homes", scenario=str(args.scenario)).Home.create(args.homes)
    meters = world.start("Meters", scenario=str(args.scenario), broker=services.broker_uri,
                         api_url=services.api.base_url, api_key=services.api.api_key, mqtt_username=user,
                         mqtt_password=password, outbox=str(args.out / "outbox-mosaik.db"))
    if args.grid == MOSAIK_PANDAPOWER:
        grid = mosaik_pandapower_grid(world, args.scenario, homes, args.out)
    else:
        grid = gridloop_grid(world, args.scenario)
    buses = {int(b.eid.removeprefix("Bus-")): b for b in grid.buses}
    for home in homes:
        info = home.extra_info
        bus = buses[info["bus"]]
        load, pairs = grid.load_of(info)
        world.connect(home, load, *pairs)
        meter = meters.Meter(bus=str(bus.extra_info["name"]), phase=info["phase"], vn_kv=bus.extra_info[grid.vn_kv])
        world.connect(bus, meter, (grid.vm, "vm_pu"))
        world.connect(home, meter, "p_mw", "q_mvar", "p_a_w", "p_b_w", "p_c_w", "q_a_var", "q_b_var", "q_c_var")
    monitor = world.start("Collector", out=str(args.out / "bus_vm_pu.csv")).Monitor()
    for bus in grid.buses:
        world.connect(bus, monitor, (grid.vm, "vm_pu"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=HERE / "dorfnetz.yaml")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("runs/mosaik-homes"))
    parser.add_argument("--homes", type=int, default=50, help="homes to simulate (the scenario's households.count)")
    parser.add_argument("--process", action="store_true", help="start gridloop's simulators as processes")
    parser.add_argument("--grid", choices=[GRIDLOOP, MOSAIK_PANDAPOWER], default=GRIDLOOP,
                        help="the grid simulator: gridloop's Grid or mosaik-pandapower-2's (in process)")
    parser.add_argument("--broker", help="a running platform's broker (default: an embedded one)")
    parser.add_argument("--api-url", help="a running platform's REST API (default: an embedded platform)")
    parser.add_argument("--api-key", default=os.environ.get("GRIDLOOP_API_KEY"), help="the tenant's API key")
    args = parser.parse_args()
    s = load_scenario(args.scenario)
    s.platform.broker, s.platform.api_url, s.platform.api_key = args.broker, args.api_url, args.api_key
    args.out.mkdir(parents=True, exist_ok=True)
    with RunServices(s, args.out) as services:
        world = mosaik.World(sim_config(args.process, args.grid))
        build(world, args, services)
        world.run(until=int(args.steps * s.clock.step), print_progress=False)
        start_ms = ms(pd.Timestamp(s.clock.start).timestamp())
        due = args.homes * len(range(0, args.steps * int(s.clock.step), int(s.meters.interval)))
        stored = wait_stored(services.api, start_ms, start_ms + ms(args.steps * s.clock.step), due, timeout_s=60)
    print(json.dumps({"steps": args.steps, "meters": args.homes, "readings_due": due, "readings_stored": stored}))


if __name__ == "__main__":
    main()
