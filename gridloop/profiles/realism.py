"""Realism statistics of synthetic homes against metered data (issue #16): 1-min single-home statistics,
aggregate shape against BDEW H0 and ADMD. Used by tests/profiles and benchmarks/profiles_realism.py."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridloop.profiles.fleet import HouseholdFleet
from gridloop.profiles.params import HouseholdParams

# per-home criteria (1-min mean active power over >= 4 weeks)
LAG1_RANGE = (0.90, 0.99)
MAX_NO_CHANGE = 0.5
NO_CHANGE_W = 5.0  # a 1-min change smaller than this counts as "no change"
REAL_P90_REL = 0.16
P90_RANGE = (0.5 * REAL_P90_REL, 2.0 * REAL_P90_REL)
PEAK_RANGE = (5.0, 40.0)
MIN_PASS_SHARE = 0.8
MIN_H0_CORR = 0.9
ADMD_RANGE_KW = (0.5, 2.0)


@dataclass
class HomeStats:
    """Per-home statistics of (minutes, homes) 1-min mean power, each an array over homes."""

    lag1: np.ndarray
    no_change: np.ndarray
    no_change_exact: np.ndarray
    p90_rel: np.ndarray
    peak_mean: np.ndarray

    @staticmethod
    def of(p: np.ndarray) -> HomeStats:
        x = p - p.mean(axis=0)
        lag1 = (x[:-1] * x[1:]).sum(axis=0) / (x * x).sum(axis=0)
        d = np.abs(np.diff(p, axis=0))
        mean = p.mean(axis=0)
        return HomeStats(lag1, (d < NO_CHANGE_W).mean(axis=0), (d == 0).mean(axis=0),
                         np.percentile(d, 90, axis=0) / mean, p.max(axis=0) / mean)

    def passes(self) -> dict[str, np.ndarray]:
        return {
            "lag1": (self.lag1 >= LAG1_RANGE[0]) & (self.lag1 <= LAG1_RANGE[1]),
            "no_change": self.no_change <= MAX_NO_CHANGE,
            "p90_rel": (self.p90_rel >= P90_RANGE[0]) & (self.p90_rel <= P90_RANGE[1]),
            "peak_mean": (self.peak_mean >= PEAK_RANGE[0]) & (self.peak_mean <= PEAK_RANGE[1]),
        }

    def pass_all(self) -> np.ndarray:
        return np.logical_and.reduce(list(self.passes().values()))


def month_at_1min(
    start: str, n_homes: int = 600, days: int = 28, seed: int = 1, params: HouseholdParams | None = None,
    tz: str = "Europe/Stockholm",
) -> np.ndarray:
    """(days * 1440, n_homes) 1-min mean active power of a fleet."""
    fleet = HouseholdFleet(n_homes, pd.Timestamp(start, tz=tz), step_s=60, seed=seed, params=params)
    return fleet.run(days * 1440)[0]


def h0_correlations(p: np.ndarray, start: str) -> dict[str, float]:
    """Correlation of the fleet's mean 15-min daily shape with BDEW H0 on the same dates, per day type."""
    from demandlib import bdew

    days = p.shape[0] // 1440
    agg = p.mean(axis=1).reshape(days, 96, 15).mean(axis=2)
    dates = pd.date_range(start, periods=days, freq="D")
    year = dates[0].year
    h0 = bdew.ElecSlp(year).get_profiles("h0")["h0"]
    h0 = h0[(h0.index >= dates[0]) & (h0.index < dates[-1] + pd.Timedelta(days=1))]
    h0d = h0.to_numpy()[: days * 96].reshape(days, 96)
    wd = dates.weekday
    out = {}
    for name, sel in (("weekday", wd < 5), ("weekend", wd >= 5), ("saturday", wd == 5), ("sunday", wd == 6)):
        out[name] = float(np.corrcoef(agg[sel].mean(axis=0), h0d[sel].mean(axis=0))[0, 1])
    return out


def admd_kw(p: np.ndarray) -> float:
    """After-diversity maximum demand per home (kW) of all homes in p (1-min means)."""
    return float(p.mean(axis=1).max() / 1000.0)
