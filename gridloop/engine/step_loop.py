"""The step loop: stages from a list, each on its own period, in list order at every instant.

It knows nothing of grids or meters. At each instant it runs, pipeline by pipeline, the stages that are
due, in the order they were given; every stage sees the outputs produced so far (this instant's from the
stages before it, the latest of the others). A pipeline is one substation's chain of stages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gridloop.engine.pacing import Pacer
from gridloop.stage import Clock, Outputs, Stage, due, next_due


class StepLoop:
    """Runs stage pipelines on one clock of integer milliseconds since the scenario start."""

    def __init__(self, pipelines: Sequence[Sequence[Stage]], epoch_ms: int = 0, pacer: Pacer | None = None) -> None:
        self.pipelines = [list(p) for p in pipelines]
        self.outputs = [Outputs() for _ in self.pipelines]
        self.epoch_ms = epoch_ms
        self.pacer = pacer
        self.instants = 0

    def next_instant(self, after_ms: int) -> int:
        return min(next_due(stage, after_ms) for p in self.pipelines for stage in p)

    def tick(self, now_ms: int) -> None:
        """Run every stage due at now_ms."""
        if self.pacer is not None:
            self.pacer.wait(now_ms / 1000)
        for stages, outputs in zip(self.pipelines, self.outputs, strict=True):
            outputs.now_ms = now_ms
            for stage in stages:
                if due(stage, now_ms):
                    outputs.put(stage.step(Clock(now_ms, stage.period_ms, self.epoch_ms), outputs))
        self.instants += 1

    def run(self, until_ms: int, on_instant: Callable[[int], None] | None = None) -> None:
        """Every instant from 0 up to (not including) until_ms at which some stage is due."""
        now = 0 if any(due(s, 0) for p in self.pipelines for s in p) else self.next_instant(0)
        while now < until_ms:
            self.tick(now)
            if on_instant is not None:
                on_instant(now)
            now = self.next_instant(now)
