"""The grid's actuators (switches, batteries, flexible loads, tap changers) and the stage that applies commands.

Commands arrive over MQTT at any time; the controller checks them at once and :class:`CommandStage` applies
them at the next step boundary, before the grid solves that step.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridloop.contract import CommandName, DeviceType
from gridloop.controllers.simulator_controller import Actuator, SimulatorController
from gridloop.grid_models.grid_stage import GridStage
from gridloop.stage import Clock, Outputs


@dataclass(frozen=True)
class CommandsDue:
    """The scenario sent commands for this step: a follower partition applies what it holds now."""

    due: bool = False


class CommandStage:
    """Applies the commands that arrived since the last step boundary.

    ``every_step=False`` (a follower partition): only at the steps the scenario sent commands, so that its
    grid changes at exactly the step the lead's does, however early a command reached it.
    """

    def __init__(self, controller: SimulatorController, period_ms: int, every_step: bool = True,
                 offset_ms: int = 0) -> None:
        self.controller, self.period_ms, self.offset_ms, self.every_step = controller, period_ms, offset_ms, every_step

    def step(self, clock: Clock, inputs: Outputs) -> None:
        due = inputs.current(CommandsDue)
        if self.every_step or (due is not None and due.due):
            self.controller.apply_pending(clock.now_s)


def grid_actuators(grid: GridStage, meter_ids: list[str]) -> list[Actuator]:
    """Every commandable device of the grid: switches, batteries, the homes' flexible loads, tap changers."""
    return (switch_actuators(grid) + battery_actuators(grid) + flexible_load_actuators(grid, meter_ids)
            + transformer_actuators(grid))


def battery_actuators(grid: GridStage) -> list[Actuator]:
    """Every scenario battery as a device taking ``storage.setpoint`` (p_kw, + charges)."""
    if grid.batteries is None:
        return []
    actuators = []
    for i, device in enumerate(grid.battery_ids):
        p_max_kw = float(grid.batteries.p_charge_max_mw[i] * 1000)

        def check(name: str, args: dict, limit: float = p_max_kw) -> str | None:
            p_kw = args.get("p_kw")
            if not isinstance(p_kw, int | float) or isinstance(p_kw, bool):
                return "storage.setpoint needs a number p_kw"
            if abs(p_kw) > limit:
                return f"p_kw={p_kw} is beyond the battery's ±{limit:g} kW"
            return None

        def setpoint(args: dict, i: int = i) -> str:
            grid.battery_setpoint_mw[i] = float(args["p_kw"]) / 1000
            return f"setpoint {args['p_kw']} kW"

        actuators.append(Actuator(device, DeviceType.BATTERY, {CommandName.STORAGE_SETPOINT: setpoint}, check))
    return actuators


def flexible_load_actuators(grid: GridStage, meter_ids: list[str]) -> list[Actuator]:
    """Every metered home takes ``load.curtail`` (limit_kw, duration_s) and ``load.release`` on its meter."""
    actuators = []

    def check(name: str, args: dict) -> str | None:
        if name == CommandName.LOAD_CURTAIL:
            if float(args.get("limit_kw", -1)) < 0:
                return "limit_kw must be >= 0"
            if float(args.get("duration_s", 0)) <= 0:
                return "duration_s must be > 0"
        return None

    for home, device in enumerate(meter_ids):
        def curtail(args: dict, home: int = home) -> str:
            grid.curtail(home, float(args["limit_kw"]) * 1000, float(args["duration_s"]))
            return f"flexible load capped at {args['limit_kw']} kW for {args['duration_s']} s"

        def release(args: dict, home: int = home) -> str:
            grid.release(home)
            return "released"

        actuators.append(Actuator(device, DeviceType.FLEXIBLE_LOAD, {CommandName.LOAD_CURTAIL: curtail,
                                                                    CommandName.LOAD_RELEASE: release},
                                  check))
    return actuators


def transformer_actuators(grid: GridStage) -> list[Actuator]:
    """Every transformer with a tap changer as device ``tr<index>`` taking ``tap.set`` (position)."""
    actuators = []
    trafo = grid.net.trafo
    for idx in trafo.index:
        lo, hi = trafo.tap_min.get(idx), trafo.tap_max.get(idx)
        if lo is None or hi is None or lo != lo or hi != hi:  # no ratio tap changer
            continue

        def check(name: str, args: dict, lo: int = int(lo), hi: int = int(hi)) -> str | None:
            position = args.get("position")
            if not isinstance(position, int | float) or position != int(position) or not lo <= position <= hi:
                return f"position must be a whole number in [{lo}, {hi}]"
            return None

        def tap(args: dict, i: int = int(idx)) -> str:
            grid.solver.set_tap(i, int(args["position"]))
            return f"tap at {int(args['position'])}"

        actuators.append(Actuator(f"tr{int(idx)}", DeviceType.TRANSFORMER, {CommandName.TAP_SET: tap}, check))
    return actuators


def switch_actuators(grid: GridStage) -> list[Actuator]:
    """Every switch of the network as a commandable device ``sw<index>``."""
    actuators = []
    internal = set((grid.outage_switches or {}).values())
    for idx in grid.net.switch.index:
        if int(idx) in internal:
            continue
        def make(closed: bool, i: int = int(idx)):
            def act(args: dict) -> str:
                grid.set_switch(i, closed)
                return f"switch {i} {'closed' if closed else 'opened'}"
            return act
        actuators.append(Actuator(f"sw{int(idx)}", DeviceType.SWITCH,
                                  {CommandName.SWITCH_OPEN: make(False), CommandName.SWITCH_CLOSE: make(True)}))
    return actuators
