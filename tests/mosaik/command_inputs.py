"""A mosaik scenario for test_command_inputs.py: commands from another simulator reach gridloop's adapters.

A ``Commands`` simulator opens switch S2 of CIGRE LV (``Grid(network=...)``) at 10 min and caps the flexible
load of ten homes (``HouseholdFleet``) from 5 min on; a collector keeps what the grid and the homes report.
"""

from __future__ import annotations

import math
import sys

import mosaik
import mosaik_api_v3

OPEN_AT_S, CURTAIL_FROM_S, CURTAILED, STEPS = 600, 300, 10, 180


class Commands(mosaik_api_v3.Simulator):
    """Switch position and curtailment limit as time-based outputs."""

    def __init__(self) -> None:
        super().__init__({"api_version": "3.0", "type": "time-based",
                          "models": {"Commands": {"public": True, "params": [], "attrs": ["closed", "curtail_w"]}}})
        self.time = 0

    def create(self, num, model):
        return [{"eid": "Commands-0", "type": model}]

    def step(self, time, inputs, max_advance):
        self.time = time
        return time + 60

    def get_data(self, outputs):
        values = {"closed": self.time < OPEN_AT_S, "curtail_w": 0.0 if self.time >= CURTAIL_FROM_S else math.nan}
        return {eid: {a: values[a] for a in attrs} for eid, attrs in outputs.items()}


def main(scenario: str, out: str) -> None:
    world = mosaik.World({"Grid": {"python": "gridloop.mosaik:Grid"},
                          "Homes": {"python": "gridloop.mosaik:HouseholdFleet"},
                          "Commands": {"python": "command_inputs:Commands"},
                          "Collector": {"python": "collector:Collector"}})
    grid = world.start("Grid").Grid(network="cigre_lv", step_s=60)
    homes = world.start("Homes", scenario=scenario).Home.create(50)
    commands = world.start("Commands").Commands()
    monitor = world.start("Collector", out=out).Monitor()
    children = {e.eid: e for e in grid.children}
    world.connect(commands, children["Switch-1"], "closed")
    for home in homes[:CURTAILED]:
        world.connect(commands, home, "curtail_w")
    for bus in (e for e in grid.children if e.type == "Bus"):
        world.connect(bus, monitor, "vm_pu", "energized")
    for home in homes:
        world.connect(home, monitor, "p_mw", "flexible_w")
    world.run(until=STEPS * 60, print_progress=False)


if __name__ == "__main__":
    main(*sys.argv[1:3])
