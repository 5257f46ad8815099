"""How far a real-time run falls behind the wall clock, recorded per step instead of logged."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class LagMeter:
    """Measures each step's start against its wall-clock slot (sim seconds / speed after the start)."""

    speed: float
    tolerance_s: float = 0.05
    max_lag_s: float = 0.0
    late_steps: int = 0
    _wall0: float | None = None

    def step_started(self, sim_s: float) -> float:
        """Record a step starting at simulated second sim_s; returns its lag in wall seconds."""
        now = time.monotonic()
        if self._wall0 is None:
            self._wall0 = now - sim_s / self.speed
        lag = max(0.0, now - (self._wall0 + sim_s / self.speed))
        self.max_lag_s = max(self.max_lag_s, lag)
        if lag > self.tolerance_s:
            self.late_steps += 1
        return lag
