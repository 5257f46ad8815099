"""Air-source heat pumps driven by the outdoor temperature: the building loses UA·(T_in − T_out), the pump
delivers COP(T_out) times its electrical power, and a thermostat with a dead band makes the compressor cycle.

Outdoor temperature: a seasonal and a daily cycle (Stockholm-like by default) plus a seeded AR(1)
weather deviation per hour. Each home has its own heat-loss coefficient, thermal mass and set point.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gridloop.profiles.params import HouseholdParams

YEAR_S = 365.25 * 86400.0


def cop(t_out_c: np.ndarray | float) -> np.ndarray:
    """Coefficient of performance of an air-to-water heat pump at 35 °C flow: ~2.3 at −10 °C, ~4.3 at +10 °C."""
    return np.clip(3.3 + 0.1 * np.asarray(t_out_c, dtype=float), 1.5, 5.0)


class OutdoorTemperature:
    """°C at any time: mean_c − swing_c·cos(season) − daily_c·cos(day) + a seeded hourly AR(1) deviation."""

    @classmethod
    def of(cls, household: HouseholdParams, start: pd.Timestamp, seed: int) -> OutdoorTemperature:
        """The climate of a household class (its ``outdoor_mean_c`` and ``outdoor_swing_c``)."""
        return cls(start, seed, household.outdoor_mean_c, household.outdoor_swing_c)

    def __init__(self, start: pd.Timestamp, seed: int, mean_c: float = 7.0, swing_c: float = 10.0,
                 daily_c: float = 3.0, sigma_c: float = 2.5) -> None:
        self.start = pd.Timestamp(start)
        self.mean_c, self.swing_c, self.daily_c = mean_c, swing_c, daily_c
        start_of_year = self.start.replace(month=1, day=1, hour=0, minute=0, second=0)
        self._year_offset_s = (self.start - start_of_year).total_seconds()
        self._day_offset_s = (self.start - self.start.normalize()).total_seconds()
        rng = np.random.default_rng([seed, 77])
        hours = 24 * 400
        shocks = rng.normal(0.0, sigma_c * np.sqrt(1 - 0.95**2), hours)
        dev = np.empty(hours)
        dev[0] = rng.normal(0.0, sigma_c)
        for h in range(1, hours):  # built once per run; a year of hours is cheap
            dev[h] = 0.95 * dev[h - 1] + shocks[h]
        self._deviation = dev

    def at(self, t_s: float) -> float:
        season = 2 * np.pi * ((self._year_offset_s + t_s) / YEAR_S - 15 / 365.25)  # coldest mid-January
        day = 2 * np.pi * ((self._day_offset_s + t_s) / 86400.0 - 15 / 24)  # warmest at 15:00
        h = t_s / 3600.0
        i = int(h) % (len(self._deviation) - 1)
        dev = self._deviation[i] + (h - int(h)) * (self._deviation[i + 1] - self._deviation[i])
        return float(self.mean_c - self.swing_c * np.cos(season) + self.daily_c * np.cos(day) + dev)

    def series(self, t_s: np.ndarray) -> np.ndarray:
        """``at`` for an array of times (s after start; before the start too), °C."""
        t = np.asarray(t_s, dtype=float)
        season = 2 * np.pi * ((self._year_offset_s + t) / YEAR_S - 15 / 365.25)
        day = 2 * np.pi * ((self._day_offset_s + t) / 86400.0 - 15 / 24)
        h = t / 3600.0
        whole = np.floor(h)
        i = whole.astype(np.int64) % (len(self._deviation) - 1)
        dev = self._deviation[i] + (h - whole) * (self._deviation[i + 1] - self._deviation[i])
        return self.mean_c - self.swing_c * np.cos(season) + self.daily_c * np.cos(day) + dev


class HeatPumps:
    """Heat pumps of the homes that have one; ``step`` returns each home's mean electrical power (W)."""

    def __init__(self, rng: np.random.Generator, n_homes: int, share: float, start: pd.Timestamp, seed: int,
                 substep_s: float = 30.0, outdoor: OutdoorTemperature | None = None) -> None:
        self.has = rng.random(n_homes) < share
        n = n_homes
        self.ua_w_k = np.where(self.has, rng.uniform(70.0, 180.0, n), 0.0)  # heat loss, W/K
        tau_h = rng.uniform(25.0, 50.0, n)  # thermal time constant of the building, h
        self.c_j_k = self.ua_w_k * tau_h * 3600.0
        self.t_set_c = 20.5 + rng.normal(0.0, 0.4, n)
        self.band_c = 0.5
        design_heat_w = self.ua_w_k * (self.t_set_c + 15.0)  # sized for −15 °C
        self.p_rated_w = design_heat_w / cop(-15.0)
        self.t_in_c = self.t_set_c - rng.uniform(0.0, self.band_c, n)
        self.on = rng.random(n) < 0.5
        self.outdoor = outdoor or OutdoorTemperature(start, seed)
        self.substep_s = substep_s
        self.last_t_out_c = float("nan")

    def step(self, t_s: float, dt_s: float) -> np.ndarray:
        """Advance [t_s, t_s + dt_s) in sub-steps; mean electrical power per home over the step, W."""
        n_sub = max(1, int(np.ceil(dt_s / self.substep_s)))
        h = dt_s / n_sub
        energy = np.zeros_like(self.p_rated_w)
        for k in range(n_sub):
            t_out = self.outdoor.at(t_s + k * h)
            self.on = np.where(self.t_in_c < self.t_set_c - self.band_c, True,
                               np.where(self.t_in_c > self.t_set_c + self.band_c, False, self.on)) & self.has
            p = np.where(self.on, self.p_rated_w, 0.0)
            heat = p * cop(t_out) - self.ua_w_k * (self.t_in_c - t_out)
            self.t_in_c = self.t_in_c + np.divide(heat * h, self.c_j_k, out=np.zeros_like(heat), where=self.has)
            energy += p * h
            self.last_t_out_c = t_out
        return energy / dt_s
