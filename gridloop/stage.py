"""The one stage interface: a period, an offset, and ``step(clock, inputs) -> outputs``.

Time in stage code is one type: integer milliseconds since the scenario start (``Clock.now_ms``).
A stage is due at ``offset_ms + k * period_ms``; its step covers ``[now_ms, now_ms + period_ms)``.
Outputs are typed values; a stage asks the step's :class:`Outputs` for the types it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Clock:
    """Where a stage's step is on the scenario's time line."""

    now_ms: int  # since the scenario start
    period_ms: int  # the stage's own period: this step covers [now_ms, now_ms + period_ms)
    epoch_ms: int = 0  # Unix ms of the scenario start, for timestamps on the wire

    @property
    def unix_ms(self) -> int:
        """The step's start as a Unix timestamp in ms (what meters stamp)."""
        return self.epoch_ms + self.now_ms

    @property
    def now_s(self) -> float:
        return self.now_ms / 1000

    @property
    def period_s(self) -> float:
        return self.period_ms / 1000


class Stage(Protocol):
    """A model that advances on the shared clock."""

    period_ms: int
    offset_ms: int

    def step(self, clock: Clock, inputs: Outputs) -> object:
        """Advance over ``[clock.now_ms, clock.now_ms + clock.period_ms)``.

        Returns a typed output, a tuple of them, or None; later stages read them from ``inputs``.
        """
        ...


class Outputs:
    """The latest output of each type, with the instant it was produced."""

    def __init__(self) -> None:
        self._values: dict[type, tuple[int, object]] = {}
        self.now_ms = 0

    def put(self, value: object) -> None:
        if value is None:
            return
        for v in value if isinstance(value, tuple) else (value,):
            self._values[type(v)] = (self.now_ms, v)

    def get(self, kind: type[T]) -> T:
        """The latest output of this type (a stage with a longer period: the one it last produced)."""
        return cast(T, self._values[kind][1])

    def latest(self, kind: type[T]) -> T | None:
        got = self._values.get(kind)
        return None if got is None else cast(T, got[1])

    def current(self, kind: type[T]) -> T | None:
        """The output of this type produced at this very instant, else None."""
        got = self._values.get(kind)
        return cast(T, got[1]) if got is not None and got[0] == self.now_ms else None


def ms(seconds: float) -> int:
    """Seconds of the scenario file as the stages' integer milliseconds."""
    return int(round(seconds * 1000))
