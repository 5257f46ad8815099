"""A substation's real stages wired without broker or platform: the order of a step and what goes to the DIA."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

from gridloop.engine.step_loop import StepLoop
from gridloop.engine.substation_unit import build_unit
from gridloop.scenario import load_scenario
from gridloop.scenario.model import FaultEvent, LineFault
from gridloop.stage import ms

ROOT = Path(__file__).resolve().parents[2]


class FakeDia:
    def __init__(self, trace: list[str], start_ms: int) -> None:
        self.trace, self.start_ms = trace, start_ms

    def publish(self, *samples) -> None:  # a step's samples in one call
        self.trace += [f"readings of {(sample.ts_ms - self.start_ms) / 1000:g} s: {len(sample.devices)} from "
                       f"{sample.devices[0]}" for sample in samples]

    def publish_events(self, events: list[dict]) -> None:
        self.trace.append(f"events {dict(Counter(str(e['type']) for e in events))}")


class FakeController:
    arrivals = 0

    def __init__(self, trace: list[str]) -> None:
        self.trace = trace

    def apply_pending(self, sim_time_s: float) -> int:
        self.trace.append(f"commands at {sim_time_s:g} s")
        return 0


def test_a_substation_steps_its_stages_in_order_without_a_broker():
    s = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    s.events, s.clock.duration = [FaultEvent(at=120, fault=LineFault(line=40))], 600.0
    unit = build_unit(s, 0)
    trace: list[str] = []
    start_ms = int(s.clock.start.timestamp() * 1000)
    fakes: tuple[Any, Any, Any] = (FakeDia(trace, start_ms), FakeController(trace), None)  # no MQTT, no platform
    stages = unit.pipeline(*fakes, owned=None, lead=True)
    assert [type(st).__name__ for st in stages] == [
        "ScenarioEventsStage", "CommandStage", "GridStage", "MeterEventsStage", "PublishStage", "HomeMeterStage",
        "SubstationMeterStage", "UtilityMeterStage", "PublishStage", "RecordStage"]
    StepLoop([stages], start_ms).run(ms(s.clock.duration))
    assert "\n".join(trace) == textwrap.dedent("""\
        commands at 0 s
        readings of 0 s: 102 from m00001
        readings of 0 s: 1 from ss0
        commands at 60 s
        commands at 120 s
        events {'voltage_sag': 102}
        commands at 180 s
        commands at 240 s
        commands at 300 s
        readings of 300 s: 102 from m00001
        readings of 300 s: 1 from ss0
        commands at 360 s
        commands at 420 s
        commands at 480 s
        commands at 540 s""")
    assert len(unit.recorder.times) == 10 and len(unit.kpi.times) == 10
    assert unit.event_publisher.events == {"voltage_sag": 102}
    assert unit.meter_events.counters.meters_dead_after_fault == 0
    assert [f["line"] for f in unit.grid.faults.ground_truth()] == [40]
