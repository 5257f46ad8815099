"""Storage peak shaving: a feeder battery discharges above a threshold and recharges in the valleys.

Reads the substation meter's total active power over MQTT and sends ``storage.setpoint`` to the
battery through the platform's REST API whenever the wanted setpoint moves by more than a dead band.
"""

from __future__ import annotations

import argparse
import threading

from gridloop.contract import CommandName, Quantity, Reading
from gridloop.sdk import CommandFailed, PlatformSession
from gridloop.services.common import connection_arguments, serve_readings

POWER = Quantity.POWER_ACTIVE_TOTAL


class PeakShaving:
    """Setpoint = what brings the transformer back to the threshold, within the battery's power."""

    def __init__(self, platform: PlatformSession, substation_meter: str, battery: str, threshold_kw: float,
                 recharge_below_kw: float, p_max_kw: float, recharge_kw: float, deadband_kw: float = 2.0) -> None:
        self.p = platform
        self.substation_meter = substation_meter
        self.battery = battery
        self.threshold_kw = threshold_kw
        self.recharge_below_kw = recharge_below_kw
        self.p_max_kw = p_max_kw
        self.recharge_kw = recharge_kw
        self.deadband_kw = deadband_kw
        self.setpoint_kw = 0.0
        self.log: list[dict] = []
        self._lock = threading.Lock()

    def wanted(self, substation_kw: float) -> float:
        """Discharge (negative) the excess over the threshold; recharge gently when far below it."""
        grid_without_battery = substation_kw - self.setpoint_kw
        if grid_without_battery > self.threshold_kw:
            return -min(self.p_max_kw, grid_without_battery - self.threshold_kw)
        if grid_without_battery < self.recharge_below_kw:
            return min(self.recharge_kw, self.threshold_kw - grid_without_battery)
        return 0.0

    def on_reading(self, r: Reading) -> None:
        if r.dev != self.substation_meter or POWER not in r.q:
            return
        with self._lock:
            target = round(self.wanted(r.q[POWER] / 1000), 1)
            if abs(target - self.setpoint_kw) < self.deadband_kw:
                return
            try:
                self.p.send_command(self.battery, CommandName.STORAGE_SETPOINT, {"p_kw": target})
                self.setpoint_kw = target
                self.log.append({"ts": r.ts, "substation_kw": r.q[POWER] / 1000, "setpoint_kw": target})
            except CommandFailed as exc:
                self.log.append({"ts": r.ts, "error": str(exc)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    connection_arguments(parser)
    parser.add_argument("--substation-meter", required=True)
    parser.add_argument("--battery", required=True)
    parser.add_argument("--threshold-kw", type=float, required=True)
    parser.add_argument("--recharge-below-kw", type=float, required=True)
    parser.add_argument("--p-max-kw", type=float, required=True)
    parser.add_argument("--recharge-kw", type=float, default=None, help="default: a third of --p-max-kw")
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    return serve_readings(
        args, lambda p: PeakShaving(p, args.substation_meter, args.battery, args.threshold_kw,
                                    args.recharge_below_kw, args.p_max_kw, args.recharge_kw or args.p_max_kw / 3),
        lambda svc: f"peak shaving: {args.battery} above {args.threshold_kw} kW")


if __name__ == "__main__":
    raise SystemExit(main())
