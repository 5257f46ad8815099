"""Demand response: keep a transformer under a power limit by curtailing flexible household load.

Watches the substation meter's total active power; above ``--limit-kw`` (less a margin) it curtails
the flexible load of homes, the most consuming first, in blocks; when the transformer has room
again it releases them. Everything goes through the platform: readings over MQTT, commands over REST.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

from gridloop.sdk import CommandFailed, PlatformSession
from gridloop.services.common import connection_arguments, run_until_stopped, session

POWER = "electricity.power.active.total"


class DemandResponse:
    """Hysteresis controller over the substation's power; state is plain dicts, decisions are logged."""

    def __init__(self, platform: PlatformSession, substation_meter: str, limit_kw: float, cap_kw: float,
                 hold_s: int, margin: float = 0.05, release_below: float = 0.8, block: int = 10) -> None:
        self.p = platform
        self.substation_meter = substation_meter
        self.limit_kw = limit_kw
        self.cap_kw = cap_kw
        self.hold_s = hold_s
        self.margin = margin
        self.release_below = release_below
        self.block = block
        self.homes = [d["id"] for d in platform.devices(type="electricity_meter")]
        self.home_kw: dict[str, float] = {}
        self.curtailed: list[str] = []
        self.log: list[dict] = []
        self._lock = threading.Lock()

    def on_reading(self, r: dict) -> None:
        value = r.get("q", {}).get(POWER)
        if value is None:
            return
        if r["dev"] != self.substation_meter:
            self.home_kw[r["dev"]] = value / 1000
            return
        with self._lock:
            self.decide(value / 1000, r["ts"])

    def decide(self, substation_kw: float, ts: int) -> None:
        if substation_kw > self.limit_kw * (1 - self.margin):
            free = [h for h in self.homes if h not in self.curtailed]
            free.sort(key=lambda h: -self.home_kw.get(h, 0.0))
            for home in free[: self.block]:
                try:
                    self.p.send_command(home, "load.curtail", {"limit_kw": self.cap_kw, "duration_s": self.hold_s})
                    self.curtailed.append(home)
                except CommandFailed as exc:
                    self.log.append({"ts": ts, "error": str(exc)})
            self.log.append({"ts": ts, "kw": substation_kw, "action": "curtail", "homes": len(self.curtailed)})
        elif self.curtailed and substation_kw < self.limit_kw * self.release_below:
            for home in self.curtailed[-self.block:]:
                try:
                    self.p.send_command(home, "load.release")
                except CommandFailed as exc:
                    self.log.append({"ts": ts, "error": str(exc)})
            self.curtailed = self.curtailed[: -self.block]
            self.log.append({"ts": ts, "kw": substation_kw, "action": "release", "homes": len(self.curtailed)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    connection_arguments(parser)
    parser.add_argument("--substation-meter", required=True)
    parser.add_argument("--limit-kw", type=float, required=True)
    parser.add_argument("--cap-kw", type=float, default=0.3, help="flexible load left to a curtailed home")
    parser.add_argument("--hold-s", type=int, default=1800)
    parser.add_argument("--log", help="write the decisions here as JSON at exit")
    args = parser.parse_args(argv)
    with session(args) as platform:
        service = DemandResponse(platform, args.substation_meter, args.limit_kw, args.cap_kw, args.hold_s)
        platform.on_readings(service.on_reading)
        print(f"demand response: {len(service.homes)} homes, limit {args.limit_kw} kW", flush=True)
        run_until_stopped(args.run_for)
        time.sleep(0.1)
    if args.log:
        with open(args.log, "w") as fh:
            json.dump(service.log, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
