"""Publishing as stages: the meters' events as soon as raised, then the step's readings to the DIA and recorder.

A partition of a one-substation run simulates every meter but publishes and records only its own share
(``owned``), identical in every partition, so the number of partitions does not change what is stored.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol

import numpy as np

from gridloop.stage import Clock, Outputs
from gridloop.virtual_meters.dia import DeviceIntegrationAdapter
from gridloop.virtual_meters.electricity import MeterSample
from gridloop.virtual_meters.meter_events import MeterEvents
from gridloop.virtual_meters.meter_stages import HomeReadings, SubstationReadings, UtilityReadings

READINGS = (HomeReadings, SubstationReadings, UtilityReadings)  # in the order they are published


class SampleRecorder(Protocol):
    """Where the run keeps what its meters sampled (the results' recorder)."""

    def record_sample(self, sample: MeterSample) -> None: ...


class PublishStage:
    """Publishes and records this step's meter readings (``events=True``: the meters' events, as soon as raised)."""

    def __init__(self, dia: DeviceIntegrationAdapter, recorder: SampleRecorder, owned: set[str] | None,
                 period_ms: int, events: bool = False, offset_ms: int = 0) -> None:
        self.dia, self.recorder, self.owned, self.for_events = dia, recorder, owned, events
        self.period_ms, self.offset_ms = period_ms, offset_ms
        self.sampled = 0
        self.events: Counter[str] = Counter()

    def step(self, clock: Clock, inputs: Outputs) -> None:
        if self.for_events:
            found = inputs.current(MeterEvents)
            if found is not None:
                events = found.events if self.owned is None else [e for e in found.events if e["dev"] in self.owned]
                if events:
                    self.events.update(e["type"] for e in events)
                    self.dia.publish_events(events)
            return
        publish: list[MeterSample] = []
        for kind in READINGS:
            readings = inputs.current(kind)
            for r in readings.items if readings is not None else ():
                mine = self.mine(r.sample)
                if r.publish:
                    publish.append(mine)
                if r.record:
                    self.recorder.record_sample(mine)
                    self.sampled += len(mine.devices)
        if publish:  # the step's readings in one go: one outbox transaction
            self.dia.publish(*publish)

    def mine(self, sample: MeterSample) -> MeterSample:
        """The part of a sample this partition publishes."""
        if self.owned is None:
            return sample
        keep = np.array([d in self.owned for d in sample.devices], dtype=bool)
        return sample if keep.all() else sample.subset(np.flatnonzero(keep))
