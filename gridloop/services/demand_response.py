"""Demand response: keep a transformer under a power limit by curtailing flexible household load.

Watches the substation meter's total active power; above ``--limit-kw`` (less a margin) it curtails
the flexible load of homes, the most consuming first, in blocks. Released load comes back (rebound),
so it releases homes only while the transformer has room for what each one will draw again (the load it
had when it was curtailed, plus a rebound allowance), smallest first, and waits a few readings between
releases. Everything goes through the platform: readings over MQTT,
commands over REST.
"""

from __future__ import annotations

import argparse
import threading

from gridloop.contract import CommandName, Quantity, Reading
from gridloop.sdk import CommandFailed, PlatformSession
from gridloop.services.common import connection_arguments, serve_readings
from gridloop.services.topology import Topology

POWER = Quantity.POWER_ACTIVE_TOTAL


class DemandResponse:
    """Hysteresis controller over the substation's power; state is plain dicts, decisions are logged."""

    def __init__(self, platform: PlatformSession, substation_meter: str, limit_kw: float, cap_kw: float,
                 hold_s: int, margin: float = 0.05, rebound_kw: float = 2.0, block: int = 10,
                 release_every: int = 3) -> None:
        self.p = platform
        self.substation_meter = substation_meter
        self.limit_kw = limit_kw
        self.cap_kw = cap_kw
        self.hold_s = hold_s
        self.margin = margin
        self.rebound_kw = rebound_kw  # what a released home may draw back at most (the fleet's rebound cap)
        self.block = block
        self.release_every = release_every
        self._since_release = 0
        devices = platform.devices()
        topology = Topology(platform.assets(), devices)
        where = next((d.asset for d in devices if d.id == substation_meter), None)
        # only the homes this transformer supplies can relieve it
        self.homes = topology.meters_below(where) if where in topology.parent else sorted(topology.meter_location)
        if platform.gateway is not None:  # one substation's service of many: never another substation's homes
            behind = {d.id for d in devices if d.gateway == platform.gateway}
            self.homes = [h for h in self.homes if h in behind]
        self.home_kw: dict[str, float] = {}
        self.curtailed: list[str] = []
        self.expected_kw: dict[str, float] = {}  # what a curtailed home will draw again when released
        self.log: list[dict] = []
        self._lock = threading.Lock()

    def on_reading(self, r: Reading) -> None:
        value = r.q.get(POWER)
        if value is None:
            return
        if r.dev != self.substation_meter:
            self.home_kw[r.dev] = value / 1000
            return
        with self._lock:
            self.decide(value / 1000, r.ts)

    def decide(self, substation_kw: float, ts: int) -> None:
        self._since_release += 1
        room = self.limit_kw * (1 - self.margin) - substation_kw
        if room < 0:
            free = [h for h in self.homes if h not in self.curtailed]
            free.sort(key=lambda h: -self.home_kw.get(h, 0.0))
            sent = []
            for home in free[: self.block]:
                try:
                    self.p.send_command(home, CommandName.LOAD_CURTAIL,
                                        {"limit_kw": self.cap_kw, "duration_s": self.hold_s})
                    self.curtailed.append(home)
                    sent.append(home)
                    self.expected_kw[home] = max(self.home_kw.get(home, 0.0) - self.cap_kw, 0.0) + self.rebound_kw
                except CommandFailed as exc:
                    self.log.append({"ts": ts, "error": str(exc)})
            self.log.append({"ts": ts, "kw": substation_kw, "action": "curtail", "homes": len(self.curtailed),
                             "devices": sent})
        elif self.curtailed and self._since_release >= self.release_every:
            self._since_release = 0
            released = []
            for home in sorted(self.curtailed, key=lambda h: (self.expected_kw.get(h, 0.0), h)):
                need = self.expected_kw.get(home, self.rebound_kw)
                if need > room or len(released) >= self.block:
                    break
                try:
                    self.p.send_command(home, CommandName.LOAD_RELEASE)
                    released.append(home)
                    room -= need
                except CommandFailed as exc:
                    self.log.append({"ts": ts, "error": str(exc)})
            self.curtailed = [h for h in self.curtailed if h not in released]
            if released:
                self.log.append({"ts": ts, "kw": substation_kw, "action": "release", "homes": len(self.curtailed),
                                 "devices": released})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    connection_arguments(parser)
    parser.add_argument("--substation-meter", required=True)
    parser.add_argument("--limit-kw", type=float, required=True)
    parser.add_argument("--cap-kw", type=float, default=0.3, help="flexible load left to a curtailed home")
    parser.add_argument("--hold-s", type=int, default=4 * 3600, help="safety end of a curtailment if never released")
    parser.add_argument("--log", help="write the decisions here as JSON at exit")
    args = parser.parse_args(argv)
    return serve_readings(
        args, lambda p: DemandResponse(p, args.substation_meter, args.limit_kw, args.cap_kw, args.hold_s),
        lambda svc: f"demand response: {len(svc.homes)} homes, limit {args.limit_kw} kW")


if __name__ == "__main__":
    raise SystemExit(main())
