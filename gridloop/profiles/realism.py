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
NO_CHANGE_W = 1.0  # "no change": a 1-min change below a meter's 1 W resolution (the 5 W share is also reported)
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
    no_change_5w: np.ndarray
    p90_rel: np.ndarray
    peak_mean: np.ndarray

    @staticmethod
    def of(p: np.ndarray) -> HomeStats:
        x = p - p.mean(axis=0)
        lag1 = (x[:-1] * x[1:]).sum(axis=0) / (x * x).sum(axis=0)
        d = np.abs(np.diff(p, axis=0))
        mean = p.mean(axis=0)
        return HomeStats(lag1, (d < NO_CHANGE_W).mean(axis=0), (d < 5.0).mean(axis=0),
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
    tz: str = "Europe/Stockholm", n_sample: int = 30,
) -> tuple[np.ndarray, np.ndarray]:
    """A fleet at 1 min: ((days * 1440, n_sample) active power of every (n_homes // n_sample)-th home,
    (days * 1440,) mean active power per home of the whole fleet)."""
    fleet = HouseholdFleet(n_homes, pd.Timestamp(start, tz=tz), step_s=60, seed=seed, params=params)
    pick = np.arange(n_sample) * (n_homes // n_sample)
    sample = np.empty((days * 1440, n_sample))
    agg = np.empty(days * 1440)
    for i in range(days * 1440):
        p, _ = fleet.step()
        sample[i] = p[pick]
        agg[i] = p.mean()
    return sample, agg


def h0_correlations(agg_1min: np.ndarray, start: str) -> dict[str, float]:
    """Correlation of the fleet's mean 15-min daily shape with BDEW H0 on the same dates, per day type."""
    from demandlib import bdew

    days = agg_1min.shape[0] // 1440
    agg = agg_1min[: days * 1440].reshape(days, 96, 15).mean(axis=2)
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


def admd_kw(agg_1min: np.ndarray) -> float:
    """After-diversity maximum demand per home (kW) from the fleet's 1-min mean power per home."""
    return float(agg_1min.max() / 1000.0)
