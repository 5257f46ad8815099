"""Time semantics of the step loop, without a broker: fake stages record what they saw, the trace is pinned as text.

Like mosaik's scenario tests: stages of 1 s, 60 s and 900 s together; a command that arrives in the middle of a
step is applied at the next step boundary; a stage late in real time with the pacing.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import orjson

import gridloop.controllers.simulator_controller as simulator_controller
from gridloop.contract import BrokerAddress, CommandName, DeviceType
from gridloop.controllers.actuators import CommandsDue, CommandStage
from gridloop.controllers.simulator_controller import Actuator, SimulatorController
from gridloop.engine.step_loop import Pacer, StepLoop
from gridloop.stage import Clock, Outputs


@dataclass(frozen=True)
class Fast:
    t_ms: int


@dataclass(frozen=True)
class Minute:
    t_ms: int


@dataclass(frozen=True)
class Quarter:
    t_ms: int


def _at(out) -> str:
    return "-" if out is None else f"{out.t_ms / 1000:g}"


class Recorder:
    """A stage that emits its own output type and writes down the latest output of every type it sees."""

    def __init__(self, name: str, kind: type, period_s: float, trace: list[str], offset_s: float = 0.0) -> None:
        self.name, self.kind, self.trace = name, kind, trace
        self.period_ms, self.offset_ms = int(period_s * 1000), int(offset_s * 1000)

    def step(self, clock: Clock, inputs: Outputs):
        seen = " ".join(f"{k.__name__.lower()}@{_at(inputs.latest(k))}" for k in (Fast, Minute, Quarter))
        self.trace.append(f"{clock.now_s:g} {self.name} [{clock.now_s:g}, {(clock.now_ms + clock.period_ms) / 1000:g})"
                          f" sees {seen}")
        return self.kind(clock.now_ms)


def _window(trace: list[str], instants: set[float]) -> str:
    return "\n".join(line for line in trace if float(line.split()[0]) in instants)


def test_periods_of_1_60_and_900_seconds_run_in_list_order_and_see_the_latest_outputs():
    trace: list[str] = []
    loop = StepLoop([[Recorder("quarter", Quarter, 900, trace), Recorder("minute", Minute, 60, trace),
                      Recorder("fast", Fast, 1, trace), Recorder("late-minute", Minute, 60, trace, offset_s=30)]])
    loop.run(until_ms=1_801_000)
    assert _window(trace, {0, 1, 30, 59, 60, 899, 900, 1800}) == textwrap.dedent("""\
        0 quarter [0, 900) sees fast@- minute@- quarter@-
        0 minute [0, 60) sees fast@- minute@- quarter@0
        0 fast [0, 1) sees fast@- minute@0 quarter@0
        1 fast [1, 2) sees fast@0 minute@0 quarter@0
        30 fast [30, 31) sees fast@29 minute@0 quarter@0
        30 late-minute [30, 90) sees fast@30 minute@0 quarter@0
        59 fast [59, 60) sees fast@58 minute@30 quarter@0
        60 minute [60, 120) sees fast@59 minute@30 quarter@0
        60 fast [60, 61) sees fast@59 minute@60 quarter@0
        899 fast [899, 900) sees fast@898 minute@870 quarter@0
        900 quarter [900, 1800) sees fast@899 minute@870 quarter@0
        900 minute [900, 960) sees fast@899 minute@870 quarter@900
        900 fast [900, 901) sees fast@899 minute@900 quarter@900
        1800 quarter [1800, 2700) sees fast@1799 minute@1770 quarter@900
        1800 minute [1800, 1860) sees fast@1799 minute@1770 quarter@1800
        1800 fast [1800, 1801) sees fast@1799 minute@1800 quarter@1800""")
    assert loop.instants == 1801  # every second once, however many stages are due in it
    assert sum(" quarter " in line for line in trace) == 3


def test_instants_are_only_those_where_a_stage_is_due():
    trace: list[str] = []
    loop = StepLoop([[Recorder("quarter", Quarter, 900, trace), Recorder("late-minute", Minute, 60, trace, 30)]])
    loop.run(until_ms=200_000)
    assert [line.split(" sees")[0] for line in trace] == [
        "0 quarter [0, 900)", "30 late-minute [30, 90)", "90 late-minute [90, 150)", "150 late-minute [150, 210)"]


class FakeClient:
    """Stands in for the controller's MQTT client: responses are written down, nothing is sent."""

    def __init__(self, sent: list[str]) -> None:
        self.sent = sent

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        self.sent.append(orjson.loads(payload)["status"])

    def disconnect(self) -> None: ...

    def loop_stop(self) -> None: ...


class FakeMessage:
    def __init__(self, topic: str, payload: bytes) -> None:
        self.topic, self.payload = topic, payload


@dataclass(frozen=True)
class Solved:
    switch_closed: bool


class FakeGrid:
    """Solves with whatever state its switch is in when its step starts."""

    period_ms, offset_ms = 60_000, 0

    def __init__(self, trace: list[str]) -> None:
        self.closed, self.trace = True, trace

    def step(self, clock: Clock, inputs: Outputs) -> Solved:
        self.trace.append(f"{clock.now_s:g} grid solves with sw1 {'closed' if self.closed else 'open'}")
        return Solved(self.closed)


class MidStepArrival:
    """After the grid solved at ``at_s``, a command reaches the controller over MQTT (another thread, mid-step)."""

    period_ms, offset_ms = 60_000, 0

    def __init__(self, controller: SimulatorController, at_s: float, trace: list[str]) -> None:
        self.controller, self.at_ms, self.trace = controller, int(at_s * 1000), trace

    def step(self, clock: Clock, inputs: Outputs) -> None:
        if clock.now_ms == self.at_ms:
            payload = orjson.dumps({"v": 1, "id": "c1", "ts": 1_767_225_600_000, "name": CommandName.SWITCH_OPEN,
                                    "args": {}})
            self.controller._on_command(None, None, FakeMessage("gridloop/v1/demo/commands/sw1", payload))
            self.trace.append(f"{clock.now_s:g} command arrives mid-step (queued: {self.controller.arrivals})")


class ScenarioCommands:
    """The scenario's own command steps (a follower partition applies commands only there)."""

    period_ms, offset_ms = 60_000, 0

    def __init__(self, at_s: set[float]) -> None:
        self.at_ms = {int(t * 1000) for t in at_s}

    def step(self, clock: Clock, inputs: Outputs) -> CommandsDue:
        return CommandsDue(clock.now_ms in self.at_ms)


def _controller(monkeypatch, grid: FakeGrid, responses: list[str]) -> SimulatorController:
    monkeypatch.setattr(simulator_controller, "connect", lambda *a, **k: FakeClient(responses))

    def open_(args: dict) -> str:
        grid.closed = False
        return "opened"

    switch = Actuator("sw1", DeviceType.SWITCH, {CommandName.SWITCH_OPEN: open_})
    return SimulatorController(BrokerAddress.parse("mqtt://127.0.0.1:1"), "demo", [switch])  # never connects


def test_a_command_arriving_mid_step_is_applied_at_the_next_step_boundary(monkeypatch):
    trace: list[str] = []
    responses: list[str] = []
    grid = FakeGrid(trace)
    controller = _controller(monkeypatch, grid, responses)
    loop = StepLoop([[CommandStage(controller, 60_000), grid, MidStepArrival(controller, 60, trace)]])
    loop.run(until_ms=240_000)
    assert "\n".join(trace) == textwrap.dedent("""\
        0 grid solves with sw1 closed
        60 grid solves with sw1 closed
        60 command arrives mid-step (queued: 1)
        120 grid solves with sw1 open
        180 grid solves with sw1 open""")
    assert responses == ["accepted", "executed"]
    assert [(e["sim_time_s"], e["command"]) for e in controller.log] == [(120.0, CommandName.SWITCH_OPEN)]


def test_a_follower_applies_a_command_only_at_the_scenario_command_step(monkeypatch):
    trace: list[str] = []
    grid = FakeGrid(trace)
    controller = _controller(monkeypatch, grid, [])
    loop = StepLoop([[ScenarioCommands({180}), CommandStage(controller, 60_000, every_step=False), grid,
                      MidStepArrival(controller, 60, trace)]])
    loop.run(until_ms=300_000)
    assert [line for line in trace if "grid" in line] == [
        "0 grid solves with sw1 closed", "60 grid solves with sw1 closed", "120 grid solves with sw1 closed",
        "180 grid solves with sw1 open", "240 grid solves with sw1 open"]


class FakeWallClock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Slow:
    """A 1 s stage whose step at ``slow_at_s`` takes ``takes_s`` of wall time."""

    period_ms, offset_ms = 1000, 0

    def __init__(self, wall: FakeWallClock, pacer: Pacer, slow_at_s: float, takes_s: float, trace: list[str]) -> None:
        self.wall, self.pacer, self.slow_at_ms, self.takes_s, self.trace = wall, pacer, slow_at_s * 1000, takes_s, trace

    def step(self, clock: Clock, inputs: Outputs) -> None:
        self.trace.append(f"{clock.now_s:g} starts at wall {self.wall.now:.2f} s")
        if clock.now_ms == self.slow_at_ms:
            self.wall.now += self.takes_s


def test_a_stage_late_in_real_time_delays_the_next_steps_without_skipping_them():
    wall, trace = FakeWallClock(), []
    pacer = Pacer(speed=1.0, now=lambda: wall.now, sleep=wall.sleep)
    loop = StepLoop([[Slow(wall, pacer, slow_at_s=1, takes_s=2.5, trace=trace)]], pacer=pacer)
    loop.run(until_ms=6000)
    assert "\n".join(trace) == textwrap.dedent("""\
        0 starts at wall 0.00 s
        1 starts at wall 1.00 s
        2 starts at wall 3.50 s
        3 starts at wall 3.50 s
        4 starts at wall 4.00 s
        5 starts at wall 5.00 s""")
    assert (pacer.late_steps, pacer.max_lag_s) == (2, 1.5)


def test_speed_scales_the_wall_clock_slots():
    wall, trace = FakeWallClock(), []
    pacer = Pacer(speed=4.0, now=lambda: wall.now, sleep=wall.sleep)
    StepLoop([[Slow(wall, pacer, slow_at_s=-1, takes_s=0, trace=trace)]], pacer=pacer).run(until_ms=3000)
    assert trace == ["0 starts at wall 0.00 s", "1 starts at wall 0.25 s", "2 starts at wall 0.50 s"]
    assert pacer.late_steps == 0
