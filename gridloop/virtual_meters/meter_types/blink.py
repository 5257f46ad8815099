"""Blink detectors: optical pulse readers on existing meters' LEDs, pulse by pulse."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridloop.contract.quantities import Quantity
from gridloop.virtual_meters.accuracy import MeterClock, quantise
from gridloop.virtual_meters.meter_types.bank import ClockedSample


@dataclass(frozen=True)
class BlinkPulses:
    """Pulses of one step: flat arrays, one element per pulse, grouped by meter in time order."""

    meter: np.ndarray  # int64 meter index
    ts_ms: np.ndarray  # int64 pulse instant (by the detector's clock)
    counts: np.ndarray  # (n,) pulses per meter in this step


class BlinkDetector:
    """Optical pulse readers on existing meters' LEDs (``imp_per_kwh``, default 1 imp/Wh).

    The LED follows the host meter's own (gain-affected) energy, so give the host's ``gain``; after any
    number of steps ``total_pulses == floor(energy_wh * imp_per_kwh / 1000)`` exactly.
    """

    def __init__(self, ids: list[str], imp_per_kwh: float = 1000.0, gain: np.ndarray | None = None,
                 clock: MeterClock | None = None) -> None:
        n = len(ids)
        self.ids = list(ids)
        self.imp_per_wh = imp_per_kwh / 1000.0
        self.gain = np.ones(n) if gain is None else np.asarray(gain, dtype=float)
        self.clock = clock or MeterClock.ideal(n)
        self.energy_wh = np.zeros(n)  # LED energy (import) since the detector was attached
        self.total_pulses = np.zeros(n, dtype=np.int64)
        self.seq = np.zeros(n, dtype=np.int64)
        self._last_counts = np.zeros(n, dtype=np.int64)
        self._last_dt_s = 0.0

    def __len__(self) -> int:
        return len(self.ids)

    def step(self, t0_ms: int, p_w: np.ndarray, dt_s: float) -> BlinkPulses:
        """Pulses during ``[t0, t0 + dt)`` at constant power ``p_w`` (n,) W; export makes no pulses."""
        x0 = self.energy_wh * self.imp_per_wh
        self.energy_wh = self.energy_wh + np.clip(self.gain * np.asarray(p_w, dtype=float), 0.0, None) * dt_s / 3600.0
        x1 = self.energy_wh * self.imp_per_wh
        before = np.floor(x0).astype(np.int64)
        after = np.floor(x1).astype(np.int64)
        counts = after - before
        self.total_pulses += counts
        total = int(counts.sum())
        meter = np.repeat(np.arange(len(self), dtype=np.int64), counts)
        starts = np.cumsum(counts) - counts
        j = np.arange(total, dtype=np.int64) - np.repeat(starts, counts) + 1  # 1..count within the meter
        threshold = (before[meter] + j).astype(float)
        frac = (threshold - x0[meter]) / (x1[meter] - x0[meter])
        true_ts = t0_ms + frac * dt_s * 1000.0
        self._last_counts, self._last_dt_s = counts, dt_s
        return BlinkPulses(meter, self.clock.read(true_ts, meter), counts)

    def sample(self, ts_ms: int) -> ClockedSample:
        """What the detector reports: counted energy (Wh, pulse resolution) and mean power over the last step."""
        self.seq += 1
        wh = self.total_pulses / self.imp_per_wh
        p = self._last_counts / self.imp_per_wh * 3600.0 / self._last_dt_s if self._last_dt_s else np.zeros(len(self))
        quantities = {Quantity.ENERGY_ACTIVE_IMPORT: np.round(wh, 3), Quantity.POWER_ACTIVE_TOTAL: quantise(p, 0.1)}
        return ClockedSample(int(ts_ms), self.ids, self.seq.copy(), quantities, self.clock.read(ts_ms))
