"""One day of household behaviour for the whole fleet, rendered as power-change events ("kinks").

A kink is (time, home, dP, dQ, phase, flexible). Powers are quantised to 1/16 W and times to whole
seconds, so energy sums are exact in float64 whatever the step length (1 s and 15 min agree bit-for-bit).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from gridloop.profiles import signatures as sig
from gridloop.profiles.appliances import (
    ACTIVITY_CLASSES,
    FREEZER,
    FRIDGE,
    LIGHTING,
    STANDBY,
    ApplianceClass,
    day_factor,
    draw_habit_times,
    energy_scale,
    mean_event_energy_j,
)
from gridloop.profiles.daylight import sun_times
from gridloop.profiles.households import CLASS_INDEX, Households, draw_households
from gridloop.profiles.occupancy import DayOccupancy, draw_day
from gridloop.profiles.params import HouseholdParams

DAY_S = 86400
QUANTUM = 16.0  # powers are multiples of 1/16 W
# drifting, jittering always-on load on top of the constant standby level
NOISE_SEGMENTS = 720  # level changes per home and day (one in each 2-min window)
NOISE_TAU_S = 1800.0  # correlation time of the slow drift
NOISE_SLOW = 0.3  # sd of the slow drift, relative to the standby level
NOISE_JITTER_W = 16.0  # sd of the jitter for an average home (scales with the multiplier ** 0.25)


def quantise(p: np.ndarray) -> np.ndarray:
    """Round to the power quantum so all energy sums are exact."""
    return np.rint(p * QUANTUM) / QUANTUM


@dataclass
class Kinks:
    """Power-change events, not necessarily sorted."""

    time: np.ndarray  # int32 s since fleet epoch (68 years of range)
    home: np.ndarray  # int32
    dp: np.ndarray  # float32, exact multiple of 1/16 W (|dP| < 1 MW)
    dq: np.ndarray  # float32
    phase: np.ndarray  # int8 absolute phase
    flex: np.ndarray  # bool

    @staticmethod
    def concat(parts: list[Kinks]) -> Kinks:
        return Kinks(*(np.concatenate([getattr(p, f) for p in parts]) for f in Kinks.__dataclass_fields__))

    def take(self, idx: np.ndarray | slice) -> Kinks:
        return Kinks(*(getattr(self, f)[idx] for f in Kinks.__dataclass_fields__))


def segments_to_kinks(
    home: np.ndarray, start: np.ndarray, dur: np.ndarray, p: np.ndarray, cls: ApplianceClass, hh: Households
) -> Kinks:
    """Turn per-event segment tables (e, M) into kinks; balanced classes split over 3 phases."""
    e, m = dur.shape
    tan_phi = np.tan(np.arccos(cls.power_factor))
    if cls.balanced_3ph:
        split = hh.three_phase[home]
        p = np.where(split[:, None], p / 3.0, p)
    pq = quantise(p)
    qq = quantise(pq * tan_phi)
    z = np.zeros((e, 1))
    times = start[:, None] + np.concatenate([np.zeros((e, 1), np.int64), np.cumsum(dur, axis=1)], axis=1)
    dp = np.diff(np.concatenate([z, pq, z], axis=1), axis=1)
    dq = np.diff(np.concatenate([z, qq, z], axis=1), axis=1)
    ph = np.broadcast_to(hh.class_phase[home, CLASS_INDEX[cls.name]][:, None], (e, m + 1))
    homes = np.broadcast_to(home[:, None], (e, m + 1))
    k = Kinks(times.ravel().astype(np.int32), homes.ravel().astype(np.int32), dp.ravel().astype(np.float32),
              dq.ravel().astype(np.float32), ph.ravel().astype(np.int8), np.full(e * (m + 1), cls.flexible))
    if cls.balanced_3ph and split.any():
        s = np.broadcast_to(split[:, None], (e, m + 1)).ravel()
        extra = [k.take(s) for _ in range(2)]
        for j, x in enumerate(extra, start=1):
            x.phase = ((hh.phase[x.home] + j) % 3).astype(np.int8)
            x.home = x.home.copy()
        k.phase = np.where(s, hh.phase[k.home], k.phase).astype(np.int8)
        k = Kinks.concat([k, *extra])
    return k.take(k.dp != 0) if cls.power_factor == 1.0 else k.take((k.dp != 0) | (k.dq != 0))


class DayBuilder:
    """Generates each calendar day's kinks from a per-(seed, date) random stream."""

    def __init__(self, n: int, params: HouseholdParams, seed: int, epoch: dt.date) -> None:
        self.params = params
        self.seed = seed
        self.epoch = epoch
        self.hh = draw_households(np.random.default_rng([seed, 0]), n, params)
        self.scale = energy_scale(params)
        self.rates = self._event_rates()
        self.light_w = self._lighting_power()
        self.standby_w = quantise(STANDBY.kwh_per_owner * self.scale * 1000.0 / 8766.0 * self.hh.multiplier)

    def _event_rates(self) -> np.ndarray:
        """Expected activations per day per home and class, before the day factor."""
        rates = np.zeros((self.hh.n, len(ACTIVITY_CLASSES)))
        for j, c in enumerate(ACTIVITY_CLASSES):
            owns = self.hh.owns[:, CLASS_INDEX[c.name]]
            if c.on_top:  # e.g. EV: energy from its own parameter, same for every owner on average
                per_day_j = self.params.ev_kwh * 3.6e6 / 365.25
                rates[:, j] = owns * per_day_j / mean_event_energy_j(c)
            else:
                per_day_j = c.kwh_per_owner * self.scale * 3.6e6 / 365.25
                rates[:, j] = owns * self.hh.multiplier * per_day_j / mean_event_energy_j(c)
        return rates

    def _lighting_power(self) -> np.ndarray:
        """Lighting level so the class mean meets its share, calibrated on dark active hours."""
        key = repr(self.params)
        if key not in _DARK_HOURS:
            _DARK_HOURS[key] = dark_active_hours_per_year(self.params)
        mean_w = LIGHTING.kwh_per_owner * self.scale * 1000.0 / _DARK_HOURS[key]
        return mean_w * self.hh.multiplier


    def build(self, day: int) -> Kinks:
        """All kinks of events that start on fleet day `day` (0 = start date)."""
        date = self.epoch + dt.timedelta(days=day)
        rng = np.random.default_rng([self.seed, 1, date.toordinal()])
        weekend = date.weekday() >= 5
        doy = date.timetuple().tm_yday
        t0 = day * DAY_S
        occ = draw_day(rng, self.hh.size, self.hh.worker, weekend, self.params.away_day_prob)
        parts = [self._cold(rng, day, doy, FRIDGE, 0), self._cold(rng, day, doy, FREEZER, 1),
                 self._lighting(rng, occ, doy, t0)]
        present = ~occ.away_day / (1.0 - self.params.away_day_prob)
        anyway = np.ones(self.hh.n)
        for j, c in enumerate(ACTIVITY_CLASSES):
            lam = self.rates[:, j] * day_factor(c, doy, weekend) * (present if c.needs_presence else anyway)
            count = rng.poisson(lam)
            if count.sum() == 0:
                continue
            home = np.repeat(np.arange(self.hh.n), count)
            t = draw_habit_times(rng, c, home.shape[0])
            if c.needs_presence:
                t = occ.place(rng, home, t, c.timer_share, c.return_delay_s)
            assert c.signature is not None
            dur, p = c.signature(rng, home.shape[0])
            parts.append(segments_to_kinks(home, t0 + t.astype(np.int64), dur, p, c, self.hh))
        k = Kinks.concat(parts)
        # two time-sorted runs: appliance events and the (already sorted) drifting always-on load
        noise = self._electronics(np.random.default_rng([self.seed, 6, date.toordinal()]), occ, t0)
        return Kinks.concat([k.take(np.argsort(k.time, kind="stable")), noise])

    def _cold(self, rng: np.random.Generator, day: int, doy: int, cls: ApplianceClass, j: int) -> Kinks:
        """Compressor cycles on a per-home global grid (no overlap across days)."""
        hh = self.hh
        owns = hh.owns[:, CLASS_INDEX[cls.name]]
        # smaller homes have smaller cold appliances (same energy target: a longer duty cycle)
        p_run = ((hh.fridge_w if j == 0 else hh.freezer_w) * np.clip(hh.multiplier, 0.3, 3.0) ** 0.4)[owns]
        period = hh.cold_period_s[owns, j]
        offset = hh.cold_offset_s[owns, j]
        homes = np.flatnonzero(owns)
        avg_w = cls.kwh_per_owner * self.scale * 1000.0 / 8766.0 * day_factor(cls, doy, False)
        on = 3.0 + (avg_w * period - 6.0 * p_run) / (1.025 * p_run)
        on = np.clip(on, 60.0, 0.8 * period)
        k_first = np.ceil((day * DAY_S - offset) / period)
        k_last = np.ceil(((day + 1) * DAY_S - offset) / period)  # exclusive
        n_cyc = (k_last - k_first).astype(np.int64)
        idx = np.repeat(np.arange(homes.shape[0]), n_cyc)
        kk = np.repeat(k_first, n_cyc) + (np.arange(idx.shape[0]) - np.repeat(np.cumsum(n_cyc) - n_cyc, n_cyc))
        start = offset[idx] + kk * period[idx] + rng.uniform(0, 0.1, idx.shape[0]) * period[idx]
        on_s = on[idx] * rng.uniform(0.9, 1.1, idx.shape[0])
        dur, p = sig.compressor_cycle(p_run[idx], on_s)
        return segments_to_kinks(homes[idx], np.floor(start).astype(np.int64), dur, p, cls, hh)

    def _electronics(self, rng: np.random.Generator, occ: DayOccupancy, t0: int) -> Kinks:
        """Always-on load that is not constant: the standby level drifts and jitters about every 2 min,
        more while someone is awake at home (chargers, screens, set-top boxes, routers under traffic).

        Deviations from the constant standby level, starting and ending at that level at midnight: one
        level change per home at a random second of each 2-min window. Built directly as kinks in time
        order (windows are disjoint, so sorting each window's homes sorts the day).
        """
        n, m = self.hh.n, NOISE_SEGMENTS
        w = DAY_S // m  # 120 s (< 256)
        r = np.zeros((m + 1, n), np.uint8)  # second of each window at which the level changes
        r[1:m] = rng.integers(0, w, (m - 1, n), np.uint8)
        e = np.arange(m + 1, dtype=np.int32)[:, None] * w + r  # segment j of a home is [e[j], e[j + 1])
        mid = 0.5 * (e[:-1] + e[1:])
        active = ((mid >= occ.wake) & (mid < occ.leave)) | ((mid >= occ.ret) & (mid < occ.sleep))
        x = NOISE_JITTER_W * self.hh.multiplier ** 0.25 * np.where(active, 1.25, 0.8) * rng.standard_normal((m, n))
        a = np.exp(-w / NOISE_TAU_S)
        drift = rng.standard_normal((m, n)) * (NOISE_SLOW * np.sqrt(1 - a * a))
        for j in range(1, m):  # AR(1) over the day's windows, vectorised over homes
            drift[j] += a * drift[j - 1]
        x += drift * self.standby_w
        pq = quantise(np.maximum(x, -0.7 * self.standby_w))
        zero = np.zeros((1, n))
        dp = np.diff(pq, axis=0, prepend=zero, append=zero).astype(np.float32)
        dq = np.diff(quantise(pq * np.tan(np.arccos(STANDBY.power_factor))), axis=0, prepend=zero, append=zero)
        home = np.argsort(r, axis=1, kind="stable").astype(np.int32)  # time order in each window (radix sort)
        sb_phase = self.hh.class_phase[:, CLASS_INDEX[STANDBY.name]].astype(np.int8)
        return Kinks((np.take_along_axis(e, home, axis=1) + t0).ravel(), home.ravel(),
                     np.take_along_axis(dp, home, axis=1).ravel(),
                     np.take_along_axis(dq.astype(np.float32), home, axis=1).ravel(),
                     sb_phase[home.ravel()], np.zeros(n * (m + 1), bool))

    def _lighting(self, rng: np.random.Generator, occ: DayOccupancy, doy: int, t0: int) -> Kinks:
        """Lights on in the dark part of active windows, level drifting between two blocks per window."""
        starts, ends = lighting_windows(rng, occ, *sun_times(self.params.latitude, doy))
        n = self.hh.n
        home = np.tile(np.arange(n), 2)
        ok = (ends > starts) & np.tile(~occ.away_day, 2)
        home, starts, ends = home[ok], starts[ok], ends[ok]
        e = home.shape[0]
        length = ends - starts
        f = rng.uniform(0.2, 0.8, e)
        lv = rng.uniform(0.6, 1.4, (e, 2))
        dur = np.column_stack([np.rint(f * length), np.rint((1 - f) * length)]).astype(np.int64)
        p = self.light_w[home][:, None] * lv
        return segments_to_kinks(home, t0 + np.rint(starts).astype(np.int64), dur, p, LIGHTING, self.hh)


def lighting_windows(
    rng: np.random.Generator, occ: DayOccupancy, sunrise: float, sunset: float
) -> tuple[np.ndarray, np.ndarray]:
    """Morning and evening dark-and-active windows, stacked as (2n,) start/end arrays.

    Each home has its own darkness threshold (orientation, curtains, taste): lights go on 0-90 min
    before sunset and off 0-60 min after sunrise.
    """
    n = occ.wake.shape[0]
    dusk = sunset - rng.uniform(0.0, 5400.0, n)
    dawn = sunrise + rng.uniform(0.0, 3600.0, n)
    m_end = np.minimum(np.where(occ.leave > occ.wake, occ.leave, occ.sleep), dawn)
    e_start = np.maximum(np.maximum(dusk, np.where(occ.ret > occ.wake, occ.ret, occ.wake)), m_end)
    return np.concatenate([occ.wake, e_start]), np.concatenate([m_end, occ.sleep])


_DARK_HOURS: dict[str, float] = {}


def dark_active_hours_per_year(params: HouseholdParams) -> float:
    """Mean yearly hours a home is awake, at home and in the dark (multiplier-weighted), by Monte Carlo."""
    rng = np.random.default_rng(2024)
    m = 400
    sample = draw_households(rng, m, params)
    hours = 0.0
    days = range(1, 366, 4)
    for doy in days:
        occ = draw_day(rng, sample.size, sample.worker, doy % 7 in (5, 6), params.away_day_prob)
        starts, ends = lighting_windows(rng, occ, *sun_times(params.latitude, doy))
        lit = (ends - starts).clip(0) * np.tile(sample.multiplier * ~occ.away_day, 2)
        hours += float(lit.sum() / 3600.0)
    return hours / m * 365.25 / len(days)
