"""Fault location, isolation and service restoration from meter events and the registry's topology.

1. Locate: meters raise ``voltage_sag`` (with the voltage they saw while the fault lasted) and then
   ``power_outage`` / ``last_gasp`` when protection clears it. On a radial feeder no fault current flows
   beyond the fault, so every meter downstream of it saw the same, lowest voltage; the uppermost location
   among those with the lowest sag is the downstream end of the faulted section, the line feeding it.
2. Isolate: open the (non-protective) switches on that section.
3. Restore: reclose the protective devices upstream of it, so the healthy part is supplied again.

The topology comes from the registry: every bus is a ``location`` asset whose ``parent`` is the
upstream location, meters sit on locations, switches carry ``meta.line`` and ``meta.bus``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

from gridloop.contract import CommandName, Event, EventType
from gridloop.sdk import CommandFailed, PlatformSession
from gridloop.services.common import connection_arguments, session, stop_event
from gridloop.services.topology import Topology

OUTAGE = {EventType.POWER_OUTAGE, EventType.LAST_GASP}
SAG_VOLTAGE = "voltage_v"  # what a meter's voltage_sag event says it saw (virtual_meters.power_quality)


class FaultLocator:
    """Collects events, decides once the burst of events has settled, then isolates and restores."""

    def __init__(self, platform: PlatformSession, topology: Topology, settle_s: float = 2.0) -> None:
        self.p = platform
        self.topo = topology
        self.settle_s = settle_s
        self.sag_v: dict[str, float] = {}
        self.out: set[str] = set()
        self.last_event = 0.0
        self.first_event_ts: int | None = None
        self.result: dict = {}
        self._lock = threading.Lock()

    def on_event(self, e: Event) -> None:
        with self._lock:
            if e.dev not in self.topo.meter_location:
                return
            if e.type == EventType.VOLTAGE_SAG:
                v = float(e.data.get(SAG_VOLTAGE) or 0.0)
                self.sag_v[e.dev] = min(v, self.sag_v.get(e.dev, v))
            elif e.type in OUTAGE:
                self.out.add(e.dev)
                self.first_event_ts = self.first_event_ts or e.ts
            else:
                return
            self.last_event = time.monotonic()

    def ready(self) -> bool:
        return bool(self.out) and not self.result and time.monotonic() - self.last_event > self.settle_s

    def locate(self, tolerance_v: float = 2.0) -> str | None:
        """The location just downstream of the faulted section."""
        with self._lock:
            dead = {self.topo.meter_location[m] for m in self.out}
            sagged = {m: v for m, v in self.sag_v.items() if self.topo.meter_location[m] in dead}
        if sagged:
            lowest = min(sagged.values())
            candidates = {self.topo.meter_location[m] for m, v in sagged.items() if v <= lowest + tolerance_v}
        else:
            candidates = dead
        return min(candidates, key=lambda loc: (self.topo.depth(loc), loc)) if candidates else None

    def act(self) -> dict:
        started = time.monotonic()
        location = self.locate()
        line = self.topo.line_of_location.get(location, -1) if location else -1
        opened, closed, errors = [], [], []
        for sw in self.topo.switches_on_line(line):
            if sw.meta.protective:
                continue  # a protective device on the faulted section itself stays open: it isolates it
            try:
                self.p.send_command(sw.id, CommandName.SWITCH_OPEN, wait_s=30)
                opened.append(sw.id)
            except CommandFailed as exc:
                errors.append(str(exc))
        upstream = set(self.topo.lines_above(location)) if opened else set()
        for sw in self.topo.switches:
            if sw.meta.protective and sw.meta.line in upstream:
                try:  # the faulted section is isolated: the healthy part upstream can be supplied again
                    self.p.send_command(sw.id, CommandName.SWITCH_CLOSE, wait_s=30)
                    closed.append(sw.id)
                except CommandFailed as exc:
                    errors.append(str(exc))
        self.result = {"location": location, "line": line, "opened": opened, "closed": closed,
                       "errors": errors, "first_event_ts": self.first_event_ts,
                       "decided_after_s": round(started - self.last_event + self.settle_s, 3),
                       "meters_out": len(self.out)}
        return self.result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    connection_arguments(parser)
    parser.add_argument("--settle-s", type=float, default=2.0, help="quiet time after the last event (wall s)")
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    with session(args) as platform:
        topo = Topology.behind_gateway(platform.assets(), platform.devices(), platform.gateway)
        locator = FaultLocator(platform, topo, args.settle_s)
        platform.on_events(locator.on_event)
        print(f"fault location: {len(topo.parent)} locations, {len(topo.switches)} switches", flush=True)
        stop = stop_event()
        deadline = time.monotonic() + (args.run_for or 1e12)
        while time.monotonic() < deadline and not stop.is_set():
            if locator.ready():
                locator.act()
                print(json.dumps(locator.result), flush=True)
            stop.wait(0.1)
    if args.log:
        with open(args.log, "w") as fh:
            json.dump(locator.result, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
