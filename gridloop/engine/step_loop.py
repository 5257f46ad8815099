"""The step loop: stages from a list, each on its own period, in list order at every instant.

It knows nothing of grids or meters. At each instant it runs, pipeline by pipeline, the stages that are
due, in the order they were given; every stage sees the outputs produced so far (this instant's from the
stages before it, the latest of the others). A pipeline is one substation's chain of stages. In real time,
a :class:`Pacer` holds each instant back until its wall-clock slot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gridloop.stage import Clock, Outputs, Stage


@dataclass
class Pacer:
    """Waits until simulated second ``sim_s`` is due on the wall clock (``sim_s / speed`` after the start).

    A step that overran its slot is not made up for by skipping: the next one starts at once, late, and the
    lag is measured at every start (``max_lag_s``; ``late_steps`` beyond ``tolerance_s``).
    """

    speed: float
    tolerance_s: float = 0.05
    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    max_lag_s: float = 0.0
    last_lag_s: float = 0.0  # of the latest instant, for observers
    late_steps: int = 0
    _wall0: float | None = None

    def wait(self, sim_s: float) -> float:
        """Block until sim_s is due; returns how late it starts, in wall seconds."""
        now = self.now()
        if self._wall0 is None:  # the first instant starts the wall clock
            self._wall0 = now - sim_s / self.speed
        slot = self._wall0 + sim_s / self.speed
        if slot > now:
            self.sleep(slot - now)
            now = self.now()
        lag = max(0.0, now - slot)
        self.last_lag_s = lag
        self.max_lag_s = max(self.max_lag_s, lag)
        if lag > self.tolerance_s:
            self.late_steps += 1
        return lag


class InstantObserver(Protocol):
    """Looks at every pipeline's outputs after each instant (a live view); must return at once."""

    def observe(self, now_ms: int, outputs: Sequence[Outputs]) -> None: ...


class StepLoop:
    """Runs stage pipelines on one clock of integer milliseconds since the scenario start."""

    def __init__(self, pipelines: Sequence[Sequence[Stage]], epoch_ms: int = 0, pacer: Pacer | None = None,
                 observers: Sequence[InstantObserver] = ()) -> None:
        self.pipelines = [list(p) for p in pipelines]
        self.observers = list(observers)
        self.outputs = [Outputs() for _ in self.pipelines]
        self.epoch_ms = epoch_ms
        self.pacer = pacer
        self.instants = 0
        for stage in (s for p in self.pipelines for s in p):
            if stage.period_ms <= 0 or stage.offset_ms < 0:
                raise ValueError(f"{type(stage).__name__}: period_ms must be > 0 and offset_ms >= 0")
        self._due_at = [[s.offset_ms for s in p] for p in self.pipelines]  # each stage's next instant

    def next_instant(self) -> int:
        return min(min(due_at) for due_at in self._due_at if due_at)

    def tick(self, now_ms: int) -> None:
        """Run every stage due at now_ms (the loop's next instant)."""
        if self.pacer is not None:
            self.pacer.wait(now_ms / 1000)
        epoch = self.epoch_ms
        for stages, outputs, due_at in zip(self.pipelines, self.outputs, self._due_at, strict=True):
            outputs.now_ms = now_ms
            for i, stage in enumerate(stages):
                if due_at[i] == now_ms:
                    outputs.put(stage.step(Clock(now_ms, stage.period_ms, epoch), outputs))
                    due_at[i] = now_ms + stage.period_ms
        self.instants += 1

    def run(self, until_ms: int, on_instant: Callable[[int], None] | None = None) -> None:
        """Every instant from now up to (not including) until_ms at which some stage is due."""
        now = self.next_instant()
        while now < until_ms:
            self.tick(now)
            for observer in self.observers:
                observer.observe(now, self.outputs)
            if on_instant is not None:
                on_instant(now)
            now = self.next_instant()
