"""Space heating, hot water, cooking gas and tap water of buildings, from outdoor temperature and occupancy.

Space heating: a building loses ``UA·(T_limit − T_alloc)`` on a day, where ``T_alloc`` is the BDEW
geometric series of daily mean outdoor temperatures (today, yesterday/2, …: the building's thermal
inertia) and ``T_limit`` the building's own heating limit (15 °C ± 1 K), with a soft hinge so heating
fades out in spring and is close to zero in summer. ``UA`` follows from the building's design power at
the design outdoor temperature. Within the day the heating follows a night set-back, a morning
recovery peak and an evening rise; the set-back is deeper in mild weather (a fixed reduction is a
larger share of a small load), and the heating programme (and the occupants) start later at weekends.

Hot water follows the occupants of every dwelling (``occupancy.draw_day``): draws after waking and in
the evening, some during the day at home, none on days away, more in winter (colder mains water);
multi-dwelling buildings add a constant circulation loss. Gas homes add cooking at meal times, and tap
water follows the same occupancy with a slight summer rise.

Everything is tabulated per local calendar day on 5-minute slots, vectorised over buildings, from a
random stream seeded by (seed, stream, day), so a day's demand does not depend on the step length.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from gridloop.profiles.heat_pump import OutdoorTemperature
from gridloop.profiles.occupancy import DayOccupancy, draw_day
from gridloop.profiles.params import HouseholdParams

SLOT_S = 300
SLOTS = 86400 // SLOT_S
HOURS = (np.arange(SLOTS) + 0.5) * SLOT_S / 3600.0
GEOMETRIC_WEIGHTS = np.array([1.0, 0.5, 0.25, 0.125]) / 1.875  # BDEW: today, yesterday, 2 and 3 days ago


@dataclass(frozen=True)
class HeatParams:
    """Building and occupant constants of the heat, hot-water and gas model."""

    design_temp_c: float = -18.0  # design outdoor temperature (Stockholm, like the default weather)
    heating_limit_c: float = 15.0  # BDEW's heating limit; per building ± limit_sigma_k
    limit_sigma_k: float = 1.0
    hinge_k: float = 1.0  # softness of the limit (rooms, solar and internal gains differ)
    kw_per_dwelling: float = 4.0  # design load per dwelling: how many dwellings a building holds
    dhw_kwh_per_person_day: float = 2.0  # ~40 l at 60 °C from 10 °C mains water
    dhw_winter_extra: float = 0.12  # mains water ~5 °C in February, ~15 °C in August
    circulation_w_per_dwelling: float = 60.0  # hot-water circulation loss of a multi-dwelling building
    cooking_kwh_day: float = 0.9  # gas hob and oven of a household of one (scaled by size^0.5)
    water_summer_extra: float = 0.08  # tap water use peaks in July (showers, watering)


def allocation_temperature(daily_mean_c: np.ndarray) -> np.ndarray:
    """BDEW allocation temperature of each day from daily means ``[d-3, d-2, d-1, d, ...]``: (len − 3,)."""
    t = np.asarray(daily_mean_c, dtype=float)
    return sum(w * t[3 - k: len(t) - k] for k, w in enumerate(GEOMETRIC_WEIGHTS))


def soft_deficit(limit_c: np.ndarray, t_alloc_c: float, hinge_k: float) -> np.ndarray:
    """Heating degrees (K) below the limit, a softplus hinge of width ``hinge_k``."""
    x = (np.asarray(limit_c) - t_alloc_c) / hinge_k
    return hinge_k * np.logaddexp(0.0, x)


def space_shape(deficit_k: np.ndarray, weekend: bool) -> np.ndarray:
    """(n, SLOTS) relative space heating over the day (mean 1) for each building's heating degrees."""
    d = np.asarray(deficit_k, dtype=float)[:, None]
    day_on, night_on = (5.5, 23.0) if weekend else (4.5, 22.5)
    h = HOURS[None, :]
    night = np.where(h >= 12.0, 1 / (1 + np.exp(-(h - night_on) / 0.3)), 1 / (1 + np.exp((h - day_on) / 0.3)))
    morning = np.exp(-0.5 * ((h - day_on - 1.0) / 1.0) ** 2)  # recovery after the set-back
    evening = np.exp(-0.5 * ((h - 17.0) / 4.0) ** 2)
    setback = 0.35 + 0.45 * np.exp(-d / 8.0)  # deeper in mild weather
    f = 1.0 - setback * night + 0.3 * setback * morning + 0.1 * evening
    return f / f.mean(axis=1, keepdims=True)


@lru_cache(maxsize=8)
def _bump_table(sigma_h: float) -> np.ndarray:
    """(1441, SLOTS) Gaussians centred on each minute of the day (wrapping at midnight), rows summing to one."""
    d = HOURS[None, :] - np.arange(1441)[:, None] / 60.0
    d = (d + 12.0) % 24.0 - 12.0
    g = np.exp(-0.5 * (d / sigma_h) ** 2)
    return (g / g.sum(axis=1, keepdims=True)).astype(np.float32)


def _bump(centre_h: np.ndarray, sigma_h: float) -> np.ndarray:
    """(m, SLOTS) Gaussian around each centre (to the minute), summing to one per row."""
    minute = np.clip(np.rint(np.asarray(centre_h, dtype=float) * 60.0), 0, 1440).astype(np.int64)
    return _bump_table(sigma_h)[minute]


def use_density(occ: DayOccupancy) -> np.ndarray:
    """(m, SLOTS) share of a dwelling's hot/tap water drawn in each slot (rows sum to 1, 0 on days away)."""
    h = 3600.0
    morning = _bump(occ.wake / h + 0.5, 0.6)
    evening = _bump(np.clip(occ.ret / h + 1.5, 18.0, occ.sleep / h - 1.0), 1.5)
    slot = np.arange(SLOTS, dtype=np.int16)[None, :]
    wake, leave, ret, sleep = ((x // SLOT_S).astype(np.int16)[:, None] for x in (occ.wake, occ.leave, occ.ret,
                                                                              occ.sleep))
    home = ((slot >= wake) & (slot < leave)) | ((slot >= ret) & (slot < sleep))
    day = home * (1.0 / np.maximum(home.sum(axis=1, keepdims=True), 1)).astype(np.float32)
    out = 0.45 * morning + 0.35 * evening + 0.2 * day
    return out * ~occ.away_day[:, None]


def meal_energy_wh(occ: DayOccupancy, size: np.ndarray, kwh_day: float) -> np.ndarray:
    """(m, SLOTS) cooking energy per slot: breakfast after waking, lunch if home at noon, dinner after return."""
    h = 3600.0
    noon = 12.5 * h
    home_at_noon = (noon < occ.leave) | (noon >= occ.ret)
    dinner = np.minimum(np.maximum(occ.ret / h, 17.5) + 1.0, occ.sleep / h - 1.5)
    wh = kwh_day * 1000.0 * np.sqrt(size)[:, None]
    out = wh * (0.15 * _bump(occ.wake / h + 0.3, 0.3) + 0.25 * home_at_noon[:, None] * _bump(np.full(len(size), 12.7),
                                                                                              0.5)
                + 0.6 * _bump(dinner, 0.5))
    return out * ~occ.away_day[:, None]


class Dwellings:
    """Occupants of m dwellings (size, whether the adults go out to work) and their local calendar days."""

    def __init__(self, seed: int, stream: int, n: int, household: HouseholdParams | None = None) -> None:
        self.household = household or HouseholdParams()
        self.seed, self.stream = seed, stream
        rng = np.random.default_rng([seed, stream])
        probs = np.asarray(self.household.size_probs) / np.sum(self.household.size_probs)
        self.size = rng.choice(np.arange(1, len(probs) + 1), n, p=probs)
        self.worker = rng.random(n) < self.household.worker_share

    def day(self, ordinal: int) -> tuple[np.random.Generator, DayOccupancy]:
        """The day's random stream and occupancy windows (the same whatever the step length)."""
        rng = np.random.default_rng([self.seed, self.stream, ordinal])
        weekend = pd.Timestamp.fromordinal(ordinal).weekday() >= 5
        return rng, draw_day(rng, self.size, self.worker, weekend, self.household.away_day_prob)


def slot_of(now: pd.Timestamp) -> tuple[int, int]:
    """(day ordinal, 5-minute slot) of a local time."""
    return now.toordinal(), (now.hour * 3600 + now.minute * 60 + now.second) // SLOT_S


def season_cos(ordinal: int, peak_day: int) -> float:
    """cos of the year's phase, 1 on day-of-year ``peak_day``."""
    doy = pd.Timestamp.fromordinal(ordinal).dayofyear
    return float(np.cos(2 * np.pi * (doy - peak_day) / 365.25))


class DailyTemperature:
    """Daily mean outdoor temperature (mean of the 24 hourly values from local midnight) per day ordinal."""

    def __init__(self, outdoor: OutdoorTemperature) -> None:
        self.outdoor = outdoor
        self._cache: dict[int, float] = {}

    def mean_c(self, ordinal: int) -> float:
        if ordinal not in self._cache:
            midnight = pd.Timestamp.fromordinal(ordinal).tz_localize(self.outdoor.start.tz)
            t0 = (midnight - self.outdoor.start).total_seconds()
            self._cache[ordinal] = float(self.outdoor.series(t0 + 3600.0 * np.arange(24)).mean())
        return self._cache[ordinal]

    def allocation_c(self, ordinal: int) -> float:
        """BDEW allocation temperature of the day."""
        return float(allocation_temperature(np.array([self.mean_c(ordinal - k) for k in (3, 2, 1, 0)]))[0])


class BuildingHeat:
    """Heat demand (W) of n buildings: space heating + hot water (+ circulation loss, + cooking for gas homes).

    ``power_w(*slot_of(now))`` gives each building's demand at a local time, from per-day 5-minute tables.
    """

    def __init__(self, seed: int, stream: int, design_w: np.ndarray, temperature: DailyTemperature,
                 params: HeatParams | None = None, dwellings: np.ndarray | None = None, cooking: bool = False) -> None:
        self.p = p = params or HeatParams()
        self.design_w = np.asarray(design_w, dtype=float)
        n = len(self.design_w)
        rng = np.random.default_rng([seed, stream])
        self.limit_c = np.clip(rng.normal(p.heating_limit_c, p.limit_sigma_k, n), 12.0, 18.0)
        self.ua_w_k = self.design_w / (self.limit_c - p.design_temp_c)
        if dwellings is None:
            dwellings = np.maximum(1, np.rint(self.design_w / (p.kw_per_dwelling * 1000.0))).astype(int)
        self.dwellings = np.asarray(dwellings, dtype=int)
        self._first = np.concatenate([[0], np.cumsum(self.dwellings)[:-1]])
        self.occupants = Dwellings(seed, stream + 1, int(self.dwellings.sum()))
        self.temperature = temperature
        self.cooking = cooking
        self.circulation_w = np.where(self.dwellings > 1, p.circulation_w_per_dwelling * self.dwellings, 0.0)
        self._day = -1
        self._tables: tuple[np.ndarray, np.ndarray] = (np.zeros((n, SLOTS)), np.zeros((n, SLOTS)))

    def _per_building(self, rows: np.ndarray) -> np.ndarray:
        return np.add.reduceat(rows, self._first, axis=0)

    def tables(self, ordinal: int) -> tuple[np.ndarray, np.ndarray]:
        """(space heating, hot water + cooking) in W, each (n, SLOTS), of one local day."""
        if ordinal != self._day:
            p = self.p
            weekend = pd.Timestamp.fromordinal(ordinal).weekday() >= 5
            deficit = soft_deficit(self.limit_c, self.temperature.allocation_c(ordinal), p.hinge_k)
            space = (self.ua_w_k * deficit)[:, None] * space_shape(deficit, weekend)
            _, occ = self.occupants.day(ordinal)
            size = self.occupants.size
            season = 1.0 + p.dhw_winter_extra * season_cos(ordinal, 40)
            dhw_wh = p.dhw_kwh_per_person_day * 1000.0 * season * size**0.8
            wh = dhw_wh[:, None] * use_density(occ)
            if self.cooking:
                wh = wh + meal_energy_wh(occ, size, p.cooking_kwh_day)
            water = self._per_building(wh) * 3600.0 / SLOT_S + self.circulation_w[:, None]
            self._day, self._tables = ordinal, (space, water)
        return self._tables

    def power_w(self, ordinal: int, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """(space heating, hot water + cooking) demand of each building in a slot of a day (``slot_of``), W."""
        space, water = self.tables(ordinal)
        return space[:, slot], water[:, slot]


class TapWater:
    """Draw activity of n households' water meters (mean ~1 over a day): occupancy-driven, slight summer rise."""

    def __init__(self, seed: int, stream: int, n: int, params: HeatParams | None = None) -> None:
        self.p = params or HeatParams()
        self.occupants = Dwellings(seed, stream, n)
        self._day = -1
        self._table = np.ones((n, SLOTS))

    def activity(self, ordinal: int, slot: int) -> np.ndarray:
        """Draw-rate multiplier of each household in a slot of a day (``slot_of``)."""
        if ordinal != self._day:
            _, occ = self.occupants.day(ordinal)
            season = 1.0 + self.p.water_summer_extra * season_cos(ordinal, 196)
            base = np.where(occ.away_day, 0.02, 0.08)[:, None]  # night-time toilet use, a dripping tap
            self._table = season * (base + (1.0 - base) * use_density(occ) * SLOTS)
            self._day = ordinal
        return self._table[:, slot]
