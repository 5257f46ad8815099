"""The scenario's own events as the first stage of a step: commands, faults, outages, and their ends.

Each event is handed to the stage it concerns (a command through the platform like anyone's, a fault to
the grid's protection, a link outage to the gateway, ...); the ground truth of every disturbance is kept
for the summary. Its outputs: the faults that struck (the meters record their dips) and whether the
scenario sent commands for this step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gridloop.controllers.actuators import CommandsDue
from gridloop.grid_models.faults import FaultDip, FaultsStruck
from gridloop.grid_models.grid_stage import GridStage
from gridloop.mqtt_client import wait_for
from gridloop.scenario.model import (
    BrokerOutageEvent,
    CommandEvent,
    EquipmentOutageEvent,
    FaultEvent,
    LinkDegradationEvent,
    LinkOutageEvent,
    MeterFaultEvent,
)
from gridloop.stage import Clock, Outputs, ms
from gridloop.virtual_meters.home_meters import HomeMeterFleet
from gridloop.virtual_meters.reading_path import ReadingPath


class CommandSender(Protocol):
    def send_command(self, device: str, name: str, args: dict) -> str: ...


class ScenarioEventsStage:
    """Applies the scenario's events when they are due and ends the temporary ones when their time is up."""

    def __init__(self, events: list, grid: GridStage, meters: HomeMeterFleet, path: ReadingPath,
                 api: CommandSender, arrivals: Callable[[], int], period_ms: int, send_commands: bool = True,
                 broker=None, device_prefix: str = "") -> None:
        """``arrivals``: commands the controller received so far; ``broker``: the embedded one, if any;
        ``device_prefix``: the substation's namespace on the platform (commands name its devices by local id)."""
        self.grid, self.meters, self.path, self.api, self.broker = grid, meters, path, api, broker
        self.device_prefix = device_prefix
        self.arrivals, self.send_commands = arrivals, send_commands
        self.period_ms, self.offset_ms = period_ms, 0
        self._pending = sorted(events, key=lambda e: e.at)
        self._arrivals_before = arrivals()
        self._commands = 0
        self._later: list[tuple[int, Callable[[], None]]] = []  # (due ms, what ends the disturbance)
        self._link_downs = 0  # link outages still on
        self.injected: list[dict] = []  # ground truth of every disturbance, for the summary

    def step(self, clock: Clock, inputs: Outputs) -> tuple[FaultsStruck, CommandsDue]:
        due = [end for at, end in self._later if at <= clock.now_ms]
        self._later = [x for x in self._later if x[0] > clock.now_ms]
        for end in due:
            end()
        dips: list[FaultDip] = []
        commands = False
        while self._pending and ms(self._pending[0].at) <= clock.now_ms:
            event = self._pending.pop(0)
            if isinstance(event, CommandEvent):
                self._command(clock, event)
                commands = True
            elif isinstance(event, FaultEvent):
                fault, vm_during = self.grid.faults.strike(clock.now_s, event.fault)
                dips.append(FaultDip(vm_during, fault.clearing_time_s))
            else:
                self._disturbance(clock, event)
        return FaultsStruck(tuple(dips)), CommandsDue(commands)

    def _command(self, clock: Clock, event: CommandEvent) -> None:
        self._commands += 1
        if self.send_commands:  # the lead partition sends; every partition's controller applies it
            self.api.send_command(self.device_prefix + event.device, event.command, dict(event.args))
        # it goes through the platform like anyone's; wait until it is here (it may be already), so that it
        # lands on this very step in every partition
        wait_for(lambda: self.arrivals() >= self._arrivals_before + self._commands, timeout_s=120)

    def _disturbance(self, clock: Clock, event) -> None:
        t, gateway = clock.now_s, self.path.gateway
        if isinstance(event, LinkOutageEvent) and gateway is not None:
            gateway.link.set_down(True)
            self._link_downs += 1
            self._after(clock, event.link_outage.duration, self._link_up)
            self.injected.append({"at_s": t, "kind": "link_outage", "duration_s": event.link_outage.duration})
        elif isinstance(event, LinkDegradationEvent) and gateway is not None:
            d = event.link_degradation
            gateway.link.extra_loss = d.extra_loss
            self._after(clock, d.duration, lambda: setattr(gateway.link, "extra_loss", 0.0))
            self.injected.append({"at_s": t, "kind": "link_degradation", "extra_loss": d.extra_loss,
                                  "duration_s": d.duration})
        elif isinstance(event, EquipmentOutageEvent):
            o = event.outage
            switch = self.grid.outage_switches[(o.element, o.index)]
            self.grid.set_switch(switch, False)
            self._after(clock, o.duration, lambda: self.grid.set_switch(switch, True))
            self.injected.append({"at_s": t, "kind": "equipment_outage", "element": o.element, "index": o.index,
                                  "duration_s": o.duration})
        elif isinstance(event, BrokerOutageEvent):
            if self.broker is None:
                raise ValueError("events: broker_outage needs the embedded broker (no --broker)")
            self.broker.stop()
            self._after(clock, event.broker_outage.duration, self.broker.start)
            self.injected.append({"at_s": t, "kind": "broker_outage", "duration_s": event.broker_outage.duration})
        elif isinstance(event, MeterFaultEvent):
            f = event.meter_fault
            self.meters.fault(f.meter, f.kind, clock.unix_ms, f.drift_ppm)
            self.injected.append({"at_s": t, "kind": f.kind, "meter": f.meter,
                                  **({"drift_ppm": f.drift_ppm} if f.kind == "clock_drift" else {})})

    def _after(self, clock: Clock, duration_s: float, end: Callable[[], None]) -> None:
        self._later.append((clock.now_ms + ms(duration_s), end))

    def _link_up(self) -> None:
        """The link is back once no outage that took it down is still on."""
        self._link_downs -= 1
        if self._link_downs == 0 and self.path.gateway is not None:
            self.path.gateway.link.set_down(False)
