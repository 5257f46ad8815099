"""The live view of a running scenario: the observer the engine calls after every instant, and what serves it.

The observer copies the step's bus voltages and branch loadings (a few kB) and hands them over with the
meter samples by reference; framing, JSON and the pages happen on other threads (:mod:`gridloop.view.hub`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gridloop.contract import BrokerAddress, DeviceType
from gridloop.grid_models.grid_stage import GridOutput
from gridloop.mqtt_client import TlsFiles
from gridloop.sdk import PlatformClient
from gridloop.stage import Outputs
from gridloop.view.app import create_view_app
from gridloop.view.commands import CommandTimeline
from gridloop.view.hub import Chore, FrameHub
from gridloop.view.server import ViewServer
from gridloop.view.state import LoopState, SampleView, StepSnapshot
from gridloop.view.topology import Topology, topology_of
from gridloop.virtual_meters.meter_stages import HomeReadings


class StepObserver:
    """Called by the step loop after each instant; hands the step over without waiting for anything."""

    def __init__(self, state: LoopState, epoch_ms: int, pacer=None, pipeline: int = 0) -> None:
        self.state, self.epoch_ms, self.pacer, self.pipeline = state, epoch_ms, pacer, pipeline
        self.steps = 0

    def observe(self, now_ms: int, outputs: Sequence[Outputs]) -> None:
        out = outputs[self.pipeline]
        grid = out.current(GridOutput)
        if grid is None:
            return
        self.steps += 1
        st, pacer = grid.state, self.pacer
        self.state.offer(StepSnapshot(
            self.steps, self.epoch_ms + now_ms, st.bus_vm_pu.astype(np.float32),
            np.concatenate([st.line_loading_percent, st.trafo_loading_percent]).astype(np.float32),
            getattr(pacer, "last_lag_s", None), getattr(pacer, "max_lag_s", 0.0), getattr(pacer, "late_steps", 0)))
        readings = out.current(HomeReadings)
        if readings is not None:
            self.state.offer_samples([SampleView(r.sample.ts_ms, r.sample.devices, r.sample.quantities)
                                      for r in readings.items if r.record])


def unit_topology(unit) -> Topology:
    """The drawing of one substation unit: its net, its home meters by bus, its switches."""
    grid, meters = unit.grid, unit.meters
    meter_bus = {m: int(b) for m, b in zip(meters.ids, meters.bus_index, strict=True)}
    switches = [a.device for a in unit.actuators if a.kind == DeviceType.SWITCH]
    return topology_of(grid.net, grid.bus_names, grid.line_names, grid.trafo_names, meter_bus, switches, unit.name)


def unit_events(unit, epoch_ms: int):
    """What was injected into this unit so far (faults, outages, link and meter faults), for the timeline."""
    def events() -> list[dict]:
        injected = list(unit.events.injected)
        faults = unit.grid.faults.ground_truth()
        return sorted(([{"at_ms": epoch_ms + int(e["at_s"] * 1000), **e} for e in injected]
                       + [{"at_ms": epoch_ms + int(f["at_s"] * 1000), "kind": "fault_" + str(f["kind"]),
                           "line": f["line"], "clearing_device": f["clearing_device"]} for f in faults]),
                      key=lambda e: e["at_ms"])
    return events


def open_switches(unit):
    """The unit's commandable switches that are open now (read from the net, on the hub's thread)."""
    net = unit.grid.net
    commandable = {int(a.device[2:]) for a in unit.actuators if a.kind == DeviceType.SWITCH}

    def now_open() -> list[str]:
        closed = net.switch.closed.to_numpy()
        return [f"sw{int(i)}" for i, c in zip(net.switch.index, closed, strict=True) if not c and int(i) in commandable]
    return now_open


@dataclass
class PlatformAccess:
    """How the view reaches the run's platform: the REST API and the tenant's broker account."""

    api_url: str
    api_key: str
    broker_uri: str
    tenant: str
    credentials: tuple[str, str] | None = None
    tls: TlsFiles | None = None


class LiveView:
    """The page of a running scenario: observer, state, hub and server, started together."""

    def __init__(self, unit, platform: PlatformAccess, steps_total: int, epoch_ms: int, name: str, pacer=None,
                 port: int = 0, command_key: str | None = None, max_hz: float = 4.0) -> None:
        self.api = PlatformClient(platform.api_url, platform.api_key)
        self.commands = CommandTimeline(lambda: self.state.sim_ms)
        self.state = LoopState(steps_total, len(unit.meters), self.commands, unit_events(unit, epoch_ms),
                               open_switches(unit))
        self.observer = StepObserver(self.state, epoch_ms, pacer)
        self._epoch_ms, self._prefix = epoch_ms, unit.prefix
        self.hub = FrameHub(self.state, max_hz, [Chore(0.5, self.commands.complete),
                                                   Chore(5.0, self._completeness, spend=0.02)])
        topology = unit_topology(unit)
        info = {"name": name, "mode": "live", "substation": unit.name}
        send = (lambda device, cmd, args: self.api.send_command(device, cmd, args)) if command_key else None
        self.server = ViewServer(create_view_app(self.hub, self.state, topology, info, send, command_key), port)
        try:
            self.commands.listen(BrokerAddress.parse(platform.broker_uri), platform.tenant, self.api, platform.tls,
                                 platform.credentials)
            self.hub.start()
            self.server.start()
        except BaseException:
            self.close()  # what did start must not outlive a failed start
            raise
        print(f"live view: {self.server.url}", flush=True)

    @property
    def url(self) -> str:
        return self.server.url

    def _completeness(self) -> None:
        """The platform's completeness of every meter so far (one REST call every few seconds)."""
        now = self.state.sim_ms
        if now is None or now <= self._epoch_ms:
            return
        answer = self.api.completeness(self._epoch_ms, now)
        cut = len(self._prefix)
        self.state.set_completeness({d.device[cut:]: d.ratio for d in answer.devices
                                     if d.device.startswith(self._prefix)})

    def finish(self) -> None:
        """The run's loop is over: the page says so."""
        self.state.finish()

    def close(self) -> None:
        self.state.finish()
        self.hub.stop()
        self.server.stop()
        self.commands.close()
        self.api.close()
