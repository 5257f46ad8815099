"""Every household's meter in one bank, whatever its kind: three-phase, single-phase, or 1 Hz home meter.

Interval meters (three- and single-phase) sample together into one column-wise sample over a fixed set of
meters, so that a communication link and its gateways see the same meters every time; a quantity a
single-phase meter lacks is NaN and is left out of its reading. 1 Hz home meters (for load
disaggregation) sample a window of one-second samples per step, which go through their own link.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridloop.virtual_meters.electricity import ElectricityMeterBank, MeterSample
from gridloop.virtual_meters.meter_types.bank import ClockedSample
from gridloop.virtual_meters.meter_types.blink import BlinkDetector
from gridloop.virtual_meters.meter_types.home_1hz import HomeMeter1Hz
from gridloop.virtual_meters.meter_types.single_phase import SinglePhaseMeterBank


@dataclass(frozen=True)
class WithinStep:
    """How the 1 Hz homes' own demand moves around its step mean: ΔP (W), ΔQ (var) as (n_1hz, seconds), each
    row summing to zero, and each home's loop R, X (ohm) back to its transformer."""

    dp_w: np.ndarray
    dq_var: np.ndarray
    r_ohm: np.ndarray
    x_ohm: np.ndarray

    @classmethod
    def from_demand(cls, p_w: np.ndarray, q_var: np.ndarray, supplied: np.ndarray, r_ohm: np.ndarray,
                    x_ohm: np.ndarray) -> WithinStep:
        """From the homes' per-second demand (n, seconds); a home without supply draws nothing, so no ΔP."""
        on = np.asarray(supplied, dtype=float)[:, None]
        return cls((p_w - p_w.mean(axis=1, keepdims=True)) * on, (q_var - q_var.mean(axis=1, keepdims=True)) * on,
                   np.asarray(r_ohm, dtype=float), np.asarray(x_ohm, dtype=float))


class HomeMeterFleet:
    """Meters of all homes; ``phase`` is -1 for three-phase homes, else 0/1/2; ``one_hz`` marks 1 Hz meters."""

    def __init__(self, ids: list[str], bus_index: np.ndarray, phase: np.ndarray, one_hz: np.ndarray,
                 interval_s: float, rng: np.random.Generator, initial_wh: np.ndarray, blink_detectors: int = 0) -> None:
        """``blink_detectors``: the first N homes also carry an optical pulse reader on their meter's LED."""
        self.ids = list(ids)
        self.bus_index = np.asarray(bus_index, dtype=np.int64)
        self.phase = np.asarray(phase, dtype=np.int64)
        self.one_hz = np.asarray(one_hz, dtype=bool)
        self.interval_s = interval_s
        self.sampled = np.flatnonzero(~self.one_hz)  # interval meters, in a fixed order
        self._three = np.flatnonzero(~self.one_hz & (self.phase < 0))
        self._single = np.flatnonzero(~self.one_hz & (self.phase >= 0))
        self._hz = np.flatnonzero(self.one_hz)
        # positions of the three- and single-phase meters inside the merged interval sample
        where = {m: k for k, m in enumerate(self.sampled.tolist())}
        self._pos_three = np.array([where[m] for m in self._three.tolist()], dtype=np.int64)
        self._pos_single = np.array([where[m] for m in self._single.tolist()], dtype=np.int64)
        initial_wh = np.asarray(initial_wh, dtype=float)
        self.three = ElectricityMeterBank([self.ids[i] for i in self._three], self.bus_index[self._three],
                                          interval_s, initial_wh[self._three])
        self.single = SinglePhaseMeterBank([self.ids[i] for i in self._single], self.phase[self._single],
                                           interval_s, rng, initial_import_wh=initial_wh[self._single])
        self.hz = HomeMeter1Hz([self.ids[i] for i in self._hz], rng, np.maximum(self.phase[self._hz], 0),
                               initial_import_wh=initial_wh[self._hz])
        self._seq = np.zeros(len(self.sampled), dtype=np.int64)
        self.stuck = np.zeros(len(ids), dtype=bool)  # meter faults: registers that no longer count
        self.drift_ppm = np.zeros(len(ids))  # meter faults: clocks running off since drift_from_ms
        self.drift_from_ms = np.zeros(len(ids), dtype=np.int64)
        self.blink_homes = np.arange(min(blink_detectors, len(ids)))
        self.blink = BlinkDetector([f"bd{i + 1:04d}" for i in self.blink_homes])

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def sampled_ids(self) -> list[str]:
        return [self.ids[i] for i in self.sampled]

    def due(self, t_s: float) -> bool:
        return abs(t_s / self.interval_s - round(t_s / self.interval_s)) < 1e-9

    def sample(self, ts_ms: int, v_phase: np.ndarray, p_phase: np.ndarray, q_phase: np.ndarray) -> MeterSample:
        """Readings of the interval meters from per-phase voltage (V), P (W) and Q (var) of every home, (n, 3)."""
        parts = []
        if self._three.size:
            parts.append((self._pos_three, self.three.sample_phases(ts_ms, v_phase[self._three],
                                                                     p_phase[self._three])))
        if self._single.size:
            k = self.phase[self._single]
            rows = np.arange(self._single.size)
            parts.append((self._pos_single, self.single.sample(
                ts_ms, v_phase[self._single][rows, k], p_phase[self._single].sum(axis=1),
                q_phase[self._single].sum(axis=1))))
        n = len(self.sampled)
        names: list[str] = []
        for _, s in parts:
            names += [q for q in s.quantities if q not in names]
        quantities = {q: np.full(n, np.nan) for q in names}
        for pos, s in parts:
            for q, values in s.quantities.items():
                quantities[q][pos] = values
        self._seq += 1
        if self.drift_ppm.any():  # a drifting meter stamps its readings with its own, wrong, clock
            drift = self.drift_ppm[self.sampled]
            since = np.maximum(ts_ms - self.drift_from_ms[self.sampled], 0)
            meter_ts = ts_ms + np.round(since * drift * 1e-6).astype(np.int64)
            return ClockedSample(ts_ms, self.sampled_ids, self._seq.copy(), quantities, meter_ts)
        return MeterSample(ts_ms, self.sampled_ids, self._seq.copy(), quantities)

    def fault(self, meter: str, kind: str, ts_ms: int, drift_ppm: float = 0.0) -> None:
        """Make a meter faulty from now on: ``stuck_register`` or ``clock_drift``."""
        i = self.ids.index(meter)
        if kind == "stuck_register":
            self.stuck[i] = True
        else:
            self.drift_ppm[i], self.drift_from_ms[i] = drift_ppm, ts_ms

    @property
    def hz_homes(self) -> np.ndarray:
        """Positions (among all homes) of the homes with a 1 Hz meter."""
        return self._hz

    def sample_1hz(self, ts0_ms: int, seconds: int, v_phase: np.ndarray, p_w: np.ndarray,
                   within: WithinStep | None = None) -> list[MeterSample]:
        """One-second samples of the 1 Hz meters over a step.

        Without ``within`` every second is at the step's V and P. With it, second s is at P + ΔP_s (the home's
        own demand around its step mean, so the step's mean and energy are unchanged) and, to first order,
        V - (R·ΔP_s + X·ΔQ_s) / V through the home's loop impedance to its transformer.
        """
        if not self._hz.size:
            return []
        k = np.maximum(self.phase[self._hz], 0)
        v = v_phase[self._hz][np.arange(self._hz.size), k]
        p = p_w[self._hz]
        if within is None:
            return self.hz.sample_window(ts0_ms, np.repeat(v[:, None], seconds, axis=1),
                                         np.repeat(p[:, None], seconds, axis=1))
        inv_v = np.divide(1.0, v, out=np.zeros_like(v), where=v > 0)[:, None]  # no supply: V stays 0
        v_s = v[:, None] - (within.r_ohm[:, None] * within.dp_w + within.x_ohm[:, None] * within.dq_var) * inv_v
        return self.hz.sample_window(ts0_ms, v_s, p[:, None] + within.dp_w)

    def integrate(self, p_w: np.ndarray, dt_s: float, t0_ms: int = 0) -> None:
        """Registers of the interval meters over a step (1 Hz meters integrate inside their window); LED pulses."""
        p_w = np.where(self.stuck, 0.0, p_w)  # a stuck register stops counting; the meter still reports
        self.three.integrate(p_w[self._three], dt_s)
        self.single.integrate(p_w[self._single], dt_s)
        if self.blink_homes.size:
            self.blink.step(t0_ms, p_w[self.blink_homes], dt_s)

    def blink_sample(self, ts_ms: int) -> MeterSample | None:
        """What the pulse readers report at a sampling instant: counted energy and mean power."""
        return self.blink.sample(ts_ms) if self.blink_homes.size else None
