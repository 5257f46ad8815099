"""Measurement imperfections of meters, vectorised over meters: accuracy-class errors, resolution, drifting clocks.

A meter's active-energy error is dominated by a fixed gain error set at manufacture (within its class
limit), plus small sample-to-sample noise on instantaneous values.  Registers integrate the
gain-affected power and are displayed truncated to their resolution, so they never go backwards and
stay within one resolution step of the integral.  Each meter's clock runs with its own drift (ppm) and
offset, so the ``ts`` it reports is the measurement instant as its clock says (docs/contract.md, section 2).

Example::

    rng = np.random.default_rng(7)
    err = MeasurementError.draw(n, "B", rng)            # MID class B: |gain - 1| <= 1 %
    p_meas = err.instantaneous(p_w, rng)                 # gain and per-sample noise
    register = Register(n, resolution=0.1)
    register.add(err.gain * p_w * dt_s / 3600.0)        # integrate the gain-affected energy
    clock = MeterClock.draw(n, rng, sync_ms=t0_ms, drift_ppm_limit=20.0)
    ts_meter = clock.read(t_ms)                          # int64 ms per meter
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AccuracyClass:
    """An accuracy class: the limit of the fixed error and the 1-sigma noise on instantaneous values, in %."""

    name: str
    limit_pct: float  # max permissible error at reference conditions (PF 1, I >= Itr or 0.1 Ib)
    noise_pct: float  # per-sample random error of instantaneous readings (1 sigma)
    standard: str


ACCURACY_CLASSES: dict[str, AccuracyClass] = {
    # IEC 62053-21 static meters for active energy
    "1": AccuracyClass("1", 1.0, 0.05, "IEC 62053-21"),
    "2": AccuracyClass("2", 2.0, 0.1, "IEC 62053-21"),
    # MID annex MI-003 / EN 50470-3 active energy classes
    "A": AccuracyClass("A", 2.0, 0.1, "MID EN 50470-3"),
    "B": AccuracyClass("B", 1.0, 0.05, "MID EN 50470-3"),
    "C": AccuracyClass("C", 0.5, 0.025, "MID EN 50470-3"),
    # IEC 62053-23 reactive energy
    "R2": AccuracyClass("R2", 2.0, 0.1, "IEC 62053-23"),
    "R3": AccuracyClass("R3", 3.0, 0.15, "IEC 62053-23"),
    # voltage measurement of a meter's PQ function (IEC 61000-4-30 class S: +-0.5 % of Udin)
    "V05": AccuracyClass("V05", 0.5, 0.02, "IEC 61000-4-30 class S"),
}


def accuracy_class(cls: str | AccuracyClass) -> AccuracyClass:
    """Look a class up by name (``"1"``, ``"2"``, ``"A"``, ``"B"``, ``"C"``, ``"R2"``...) or pass one through."""
    if isinstance(cls, AccuracyClass):
        return cls
    try:
        return ACCURACY_CLASSES[str(cls)]
    except KeyError:
        raise ValueError(f"unknown accuracy class {cls!r}; known: {sorted(ACCURACY_CLASSES)}") from None


def draw_gain(n: int, cls: str | AccuracyClass, rng: np.random.Generator, spread: float = 0.4) -> np.ndarray:
    """Per-meter gain ``1 + e``: ``e`` normal with sigma ``spread * limit``, cut to stay strictly inside the limit.

    Production meters cluster well inside their class; ``spread`` is sigma as a fraction of the limit.
    """
    limit = accuracy_class(cls).limit_pct / 100.0
    e = rng.standard_normal(n) * spread * limit
    return 1.0 + np.clip(e, -0.999 * limit, 0.999 * limit)


@dataclass
class MeasurementError:
    """Fixed per-meter gain and per-sample relative noise of one measured quantity."""

    gain: np.ndarray  # (n,)
    noise_rel: float

    @classmethod
    def draw(cls, n: int, accuracy: str | AccuracyClass, rng: np.random.Generator,
             spread: float = 0.4) -> MeasurementError:
        """Gains drawn once within the class limit; noise from the class."""
        ac = accuracy_class(accuracy)
        return cls(draw_gain(n, ac, rng, spread), ac.noise_pct / 100.0)

    @classmethod
    def exact(cls, n: int) -> MeasurementError:
        """An ideal instrument: gain 1, no noise."""
        return cls(np.ones(n), 0.0)

    def systematic(self, true: np.ndarray) -> np.ndarray:
        """The value with only the fixed gain error (what registers integrate); broadcasts over trailing axes."""
        return _scale(true, self.gain)

    def instantaneous(self, true: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """An instantaneous reading: gain error and fresh noise per sample (shape of ``true``, meters first)."""
        v = _scale(np.asarray(true, dtype=float), self.gain)
        if self.noise_rel > 0.0:
            v = v * (1.0 + self.noise_rel * rng.standard_normal(v.shape))
        return v


def _scale(values: np.ndarray, per_meter: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values * per_meter.reshape((-1,) + (1,) * (values.ndim - 1))


def quantise(values: np.ndarray, resolution: float) -> np.ndarray:
    """An instantaneous value as displayed: rounded to the nearest resolution step."""
    steps = (np.asarray(values, dtype=float) / resolution).round()  # the method: np.round without its wrapper
    return (steps * resolution).round(_decimals(resolution)) + 0.0  # + 0.0 turns -0.0 into 0.0


def truncate(values: np.ndarray, resolution: float) -> np.ndarray:
    """A register as displayed: cut down to its last complete resolution step (never ahead of the energy)."""
    steps = np.floor(np.asarray(values, dtype=float) / resolution + 1e-9)
    return (steps * resolution).round(_decimals(resolution))


@functools.lru_cache(maxsize=64)
def _decimals(resolution: float) -> int:
    return max(0, int(np.ceil(-np.log10(resolution) - 1e-9)) + 1)


class Register:
    """A cumulative energy register: exact internal integral, displayed truncated to ``resolution``."""

    def __init__(self, n: int, resolution: float = 0.1, initial: float | np.ndarray = 0.0) -> None:
        self.resolution = resolution
        self.value = np.broadcast_to(np.asarray(initial, dtype=float), (n,)).copy()

    def add(self, amount: np.ndarray) -> None:
        """Add non-negative amounts (negative ones are ignored: registers only count up)."""
        self.value += np.maximum(amount, 0.0)  # np.clip(amount, 0.0, None) without its Python wrapper

    def display(self) -> np.ndarray:
        """What the meter shows and reports."""
        return truncate(self.value, self.resolution)


@dataclass
class MeterClock:
    """Per-meter clocks: ``meter_time = true + offset + drift_ppm * 1e-6 * (true - sync)``, all in ms."""

    offset_ms: np.ndarray  # (n,) error at the last synchronisation
    drift_ppm: np.ndarray  # (n,) rate error, parts per million (+: clock runs fast)
    sync_ms: np.ndarray  # (n,) true time of the last synchronisation

    @classmethod
    def draw(cls, n: int, rng: np.random.Generator, sync_ms: int = 0, drift_ppm_limit: float = 20.0,
             offset_ms_sigma: float = 200.0) -> MeterClock:
        """Crystal clocks: drift uniform within +-limit (RTC crystals: +-20 ppm), offset normal."""
        return cls(
            offset_ms=rng.standard_normal(n) * offset_ms_sigma,
            drift_ppm=rng.uniform(-drift_ppm_limit, drift_ppm_limit, n),
            sync_ms=np.full(n, float(sync_ms)),
        )

    @classmethod
    def ideal(cls, n: int, sync_ms: int = 0) -> MeterClock:
        """Clocks that tell true time."""
        return cls(np.zeros(n), np.zeros(n), np.full(n, float(sync_ms)))

    def __len__(self) -> int:
        return int(self.offset_ms.size)

    def error_ms(self, true_ms: int | float | np.ndarray, meters: np.ndarray | None = None) -> np.ndarray:
        """Meter time minus true time, ms (float); ``meters`` picks one clock per element of ``true_ms``."""
        sel = slice(None) if meters is None else meters
        return self.offset_ms[sel] + self.drift_ppm[sel] * 1e-6 * (np.asarray(true_ms, dtype=float) - self.sync_ms[sel])

    def read(self, true_ms: int | float | np.ndarray, meters: np.ndarray | None = None) -> np.ndarray:
        """What the clocks say at true time ``true_ms``: int64 epoch ms (per meter, or per ``meters`` index)."""
        t = np.asarray(true_ms, dtype=float)
        return np.floor(t + self.error_ms(t, meters) + 1e-6).astype(np.int64)  # 1e-6: float noise at whole ms

    def synchronise(self, true_ms: int, mask: np.ndarray | None = None, residual_ms: float = 0.0) -> None:
        """A time sync (e.g. DLMS clock set from the head-end): selected clocks jump to true time + residual."""
        sel = np.ones(len(self), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        self.offset_ms[sel] = residual_ms
        self.sync_ms[sel] = float(true_ms)
