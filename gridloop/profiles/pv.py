"""Rooftop PV per home: pvlib clear-sky irradiance on three roof orientations times a cloud process.

Generation is piecewise constant on 10 s cells of one neighbourhood cloud field that reaches each home
with its own lag (0-3 min), with per-home capacity and orientation. Irradiance is quantised and
capacities are multiples of 1/16 kWp, so step energies are exact and resolution-consistent.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

CELL_S = 10
CELLS = 86400 // CELL_S
ORIENTATIONS = ((35.0, 180.0), (30.0, 90.0), (30.0, 270.0))  # (tilt, azimuth): south, east, west
PERFORMANCE_RATIO = 0.85


def cloud_index(rng: np.random.Generator, day_of_year: int, cloudiness: float = 1.0) -> np.ndarray:
    """Clear-sky index per 10 s cell for one day: clear, broken-cloud or overcast regime.

    cloudiness 1.0 is a Stockholm-like climate; lower values make clear days more common (Rome ~0.6).
    """
    winter = 0.5 + 0.5 * np.cos(2 * np.pi * (day_of_year - 15) / 365.25)
    p_overcast = (0.25 + 0.3 * winter) * cloudiness
    p_clear = 1.0 - (0.65 + 0.15 * winter) * cloudiness
    u = rng.random()
    if u < p_clear:
        return np.clip(1.0 - np.abs(rng.normal(0, 0.01, CELLS)), 0.9, 1.0)
    if u < p_clear + p_overcast:
        knots = rng.uniform(0.1, 0.45, 74)  # every 20 min, linearly interpolated
        return np.interp(np.arange(CELLS), np.arange(74) * 120, knots)
    # broken clouds: alternating sunny / shaded spells with exponential durations
    n = 600
    sunny = rng.exponential(300.0, n)
    shaded = rng.exponential(180.0, n)
    edges = np.cumsum(np.column_stack([sunny, shaded]).ravel()) / CELL_S
    state = np.searchsorted(edges, np.arange(CELLS), side="right") % 2  # 0 sunny, 1 shaded
    depth = rng.uniform(0.2, 0.55, n)[np.minimum(np.searchsorted(edges[1::2], np.arange(CELLS)), n - 1)]
    return np.where(state == 1, depth, 1.0)


class RooftopPV:
    """PV generation of the homes that own it; energy(t0, t1) in J per home, exact."""

    def __init__(
        self, rng: np.random.Generator, n: int, share: float, mean_kwp: float, latitude: float,
        longitude: float, tz: str, epoch: dt.date, seed: int, cloudiness: float = 1.0,
    ) -> None:
        owns = rng.random(n) < share
        kwp = np.clip(rng.lognormal(np.log(mean_kwp) - 0.045, 0.3, n), 1.0, 15.0)
        self.kwp = np.rint(kwp * 16.0) / 16.0 * owns
        self.orientation = rng.choice(3, n, p=[0.6, 0.2, 0.2])
        # the cloud field drifts across the neighbourhood: each home sees it up to 3 min later
        self.lag_s = rng.integers(0, 180, n)
        self.latitude, self.longitude, self.tz = latitude, longitude, tz
        self.epoch, self.seed, self.cloudiness = epoch, seed, cloudiness
        self._days: dict[int, np.ndarray] = {}

    @property
    def any(self) -> bool:
        return bool(self.kwp.any())

    def _cumulative(self, day: int) -> np.ndarray:
        """(3, CELLS + 1) cumulative energy in J per kWp from local midnight, per orientation."""
        if day not in self._days:
            import pvlib

            date = self.epoch + dt.timedelta(days=day)
            loc = pvlib.location.Location(self.latitude, self.longitude, tz=self.tz)
            idx = pd.date_range(pd.Timestamp(date).tz_localize(self.tz), periods=1440, freq="60s")
            sky = loc.get_clearsky(idx)
            sun = loc.get_solarposition(idx)
            rng = np.random.default_rng([self.seed, 2, date.toordinal()])
            kc = cloud_index(rng, date.timetuple().tm_yday, self.cloudiness)
            cum = np.zeros((3, CELLS + 1))
            for k, (tilt, az) in enumerate(ORIENTATIONS):
                poa = pvlib.irradiance.get_total_irradiance(
                    tilt, az, sun["apparent_zenith"], sun["azimuth"], sky["dni"], sky["ghi"], sky["dhi"]
                )["poa_global"].fillna(0.0).to_numpy()
                w_per_kwp = np.rint(np.repeat(poa, 60 // CELL_S) * kc * PERFORMANCE_RATIO * 16.0) / 16.0
                cum[k, 1:] = np.cumsum(w_per_kwp * CELL_S)
            self._days = {d: v for d, v in self._days.items() if d >= day - 1}
            self._days[day] = cum
        return self._days[day]

    def _cum_at(self, day: int, s: int) -> np.ndarray:
        """Per-home cumulative J per kWp at s seconds into the day, shifted by each home's cloud lag."""
        cum = self._cumulative(day)
        sh = np.clip(s - self.lag_s, 0, 86400)
        j = np.minimum(sh // CELL_S, CELLS - 1)
        k = self.orientation
        rate = (cum[k, j + 1] - cum[k, j]) / CELL_S
        return cum[k, j] + rate * (sh - j * CELL_S)

    def energy(self, t0: int, t1: int) -> np.ndarray:
        """PV energy (J) of each home over [t0, t1) seconds since the fleet epoch."""
        per_kwp = np.zeros(self.kwp.shape[0])
        t = t0
        while t < t1:
            day = t // 86400
            end = min(t1, (day + 1) * 86400)
            per_kwp += self._cum_at(day, end - day * 86400) - self._cum_at(day, t - day * 86400)
            t = end
        return self.kwp * per_kwp
