"""Real-time pacing: each instant of the loop starts at its wall-clock slot, and how late it was is recorded."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


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
        self.max_lag_s = max(self.max_lag_s, lag)
        if lag > self.tolerance_s:
            self.late_steps += 1
        return lag
