"""Daily occupancy windows per home: asleep, active at home, or away (vectorised over homes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DayOccupancy:
    """Seconds after local midnight; the home is active in [wake, leave) and [ret, sleep)."""

    wake: np.ndarray
    leave: np.ndarray
    ret: np.ndarray
    sleep: np.ndarray
    away_day: np.ndarray

    def place(
        self, rng: np.random.Generator, home: np.ndarray, t: np.ndarray, timer: float = 0.0,
        return_delay_s: float = 7200.0,
    ) -> np.ndarray:
        """Move preferred activity times into the home's active windows (keeps the count of events).

        A share `timer` of the events that fall while the home is out keep their time (delay-start
        timers of wet appliances); the rest move to before leaving or to after returning (exponential delay,
        mean `return_delay_s`).
        """
        wake, leave, ret, sleep = self.wake[home], self.leave[home], self.ret[home], self.sleep[home]
        t = np.where(t < wake, wake + rng.exponential(1800.0, t.shape), t)
        keep = rng.random(t.shape) < timer
        away = (t >= leave) & (t < ret) & ~keep
        early = rng.random(t.shape) < 0.25
        t = np.where(away & early, leave - rng.uniform(300.0, 5400.0, t.shape), t)
        t = np.where(away & ~early, ret + rng.exponential(return_delay_s, t.shape), t)
        late = t > sleep - 600.0
        t = np.where(late, sleep - rng.uniform(600.0, 5400.0, t.shape), t)
        away = (t >= leave) & (t < ret) & ~keep
        t = np.where(away, leave - rng.uniform(300.0, 1800.0, t.shape), t)
        return np.clip(t, wake, 86399.0)


def draw_day(
    rng: np.random.Generator, size: np.ndarray, worker: np.ndarray, weekend: bool, away_day_prob: float
) -> DayOccupancy:
    """Draw wake/leave/return/sleep times for all homes for one day."""
    n = size.shape[0]
    h = 3600.0
    if weekend:
        wake = rng.normal(8.3 * h, 0.9 * h, n)
        out = rng.random(n) < 0.35
        leave = np.where(out, rng.uniform(10.5 * h, 14.0 * h, n), wake)
        ret = np.where(out, leave + rng.uniform(1.5 * h, 5.0 * h, n), wake)
        sleep = rng.normal(23.9 * h, 1.0 * h, n)
    else:
        wake = rng.normal(6.7 * h, 0.6 * h, n)
        # someone stays at home more often in larger households
        empty = worker & (rng.random(n) < np.where(size <= 2, 0.85, 0.45))
        leave = np.where(empty, wake + rng.normal(1.0 * h, 0.25 * h, n), wake)
        ret = np.where(empty, rng.normal(17.0 * h, 0.9 * h, n), wake)
        sleep = rng.normal(23.3 * h, 1.0 * h, n)
    wake = np.clip(wake, 4.5 * h, 11.0 * h)
    leave = np.clip(leave, wake, 22.0 * h)
    ret = np.clip(ret, leave, 22.5 * h)
    sleep = np.clip(sleep, np.maximum(ret, wake) + 0.5 * h, 23.99 * h + 1800.0)
    away_day = rng.random(n) < away_day_prob
    return DayOccupancy(wake, leave, ret, sleep, away_day)
