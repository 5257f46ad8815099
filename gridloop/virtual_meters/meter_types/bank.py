"""What the meter banks share: samples stamped by the meters' own clocks, display resolutions, the bank base.

Every bank keeps its state in numpy arrays and returns the existing :class:`MeterSample` (as the
subclass :class:`ClockedSample`, which adds each meter's own clock reading).  Measurements carry the
meter's accuracy class (:mod:`gridloop.virtual_meters.accuracy`): registers integrate the gain-affected
power and are shown truncated to their resolution; instantaneous values get gain and noise and are
rounded to theirs.  Currents and power factors are derived from the meter's own measured V, P and Q,
so ``I = hypot(P, Q) / V`` and ``PF = P / hypot(P, Q)`` hold for the reported values to resolution.
A per-meter tamper input raises ``tamper`` events through :mod:`gridloop.virtual_meters.power_quality`.

Example::

    rng = np.random.default_rng(1)
    subs = SubstationMeterBank(ids, interval_s=10.0, rng=rng, accuracy="C")
    subs.integrate(p_w, q_var, dt_s=10.0)               # (n, 3) W and var over the past step
    sample = subs.sample(ts_ms, v_phase, p_w, q_var, frequency_hz=50.0)
    events = subs.events(ts_ms, tamper=cover_open)      # contract event dicts
    payloads = encode_envelopes_exact(sample, 500)      # telemetry envelopes (gridloop.virtual_meters.envelopes)
    pulses = BlinkDetector(ids, gain=subs.active_error.gain).step(ts_ms, p_w.sum(axis=1), 10.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gridloop.virtual_meters.accuracy import AccuracyClass, MeasurementError, MeterClock, Register
from gridloop.virtual_meters.electricity import MeterSample
from gridloop.virtual_meters.power_quality import PQState, detect, to_contract_events


@dataclass
class ClockedSample(MeterSample):
    """A :class:`MeterSample` whose meters also say when *their* clocks took it: ``meter_ts_ms`` (n,) int64.

    ``ts_ms`` stays the true sampling instant, so code that knows only ``MeterSample`` keeps working.
    """

    meter_ts_ms: np.ndarray | None = None


@dataclass(frozen=True)
class Resolution:
    """Display resolution of each kind of value (DLMS scalers of typical pilot meters)."""

    energy_wh: float = 0.1
    reactive_varh: float = 0.1
    voltage_v: float = 0.1
    current_a: float = 0.01
    power_w: float = 0.1
    reactive_var: float = 0.1
    power_factor: float = 0.001
    frequency_hz: float = 0.01


def per_meter(x: float | np.ndarray, n: int, shape: tuple[int, ...] = ()) -> np.ndarray:
    """``x`` broadcast to one value (of ``shape``) per meter (as it is when it already has that shape)."""
    a = np.asarray(x, dtype=float)
    return a if a.shape == (n, *shape) else np.broadcast_to(a, (n, *shape))


def derive_current_pf(v: np.ndarray, p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Current and power factor from the meter's measured V, P, Q (PF signed like P; 1 with no load)."""
    s = np.hypot(p, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        current = np.where(v > 0.0, s / v, 0.0)
        pf = np.where(s > 0.0, p / s, 1.0)
    return current, pf


class MeterBank:
    """State and behaviour shared by the banks: errors, registers, clocks, sequence numbers, PQ/tamper state."""

    n_phases = 3

    def __init__(self, ids: list[str], interval_s: float, rng: np.random.Generator,
                 accuracy: str | AccuracyClass, reactive_accuracy: str | AccuracyClass,
                 voltage_accuracy: str | AccuracyClass, clock: MeterClock | None,
                 initial_import_wh: float | np.ndarray, initial_export_wh: float | np.ndarray,
                 resolution: Resolution | None, un_v: float) -> None:
        n = len(ids)
        self.ids = list(ids)
        self.interval_s = float(interval_s)
        self.rng = rng
        self.res = resolution or Resolution()
        self.un_v = un_v
        self.active_error = MeasurementError.draw(n, accuracy, rng)
        self.reactive_error = MeasurementError.draw(n, reactive_accuracy, rng)
        self.voltage_error = MeasurementError.draw(n, voltage_accuracy, rng)
        self.clock = clock or MeterClock.ideal(n)
        self.import_wh = Register(n, self.res.energy_wh, initial_import_wh)
        self.export_wh = Register(n, self.res.energy_wh, initial_export_wh)
        self.seq = np.zeros(n, dtype=np.int64)
        self.pq_state = PQState.initial(n, self.n_phases)
        self._last_v = np.full((n, self.n_phases), un_v)

    def __len__(self) -> int:
        return len(self.ids)

    def due(self, t_s: float) -> bool:
        """Meters sample at whole multiples of their interval (clock-aligned, as the pilot meters do)."""
        return abs(t_s / self.interval_s - round(t_s / self.interval_s)) < 1e-9

    def _integrate_active(self, p_total_w: np.ndarray, dt_s: float) -> None:
        wh = self.active_error.systematic(p_total_w) * (dt_s / 3600.0)
        self.import_wh.add(wh)
        self.export_wh.add(-wh)

    def _stamp(self, ts_ms: int, quantities: dict[str, np.ndarray]) -> ClockedSample:
        self.seq += 1
        return ClockedSample(int(ts_ms), self.ids, self.seq.copy(), quantities, self.clock.read(ts_ms))

    def events(self, ts_ms: int, tamper: np.ndarray | None = None,
               energised: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Contract event dicts since the last call: ``tamper`` on a rising tamper flag, and EN 50160 voltage events.

        Uses the voltages of the latest ``sample``; each event is stamped by its meter's clock.
        """
        ev, self.pq_state = detect(self._last_v, self.pq_state, un_v=self.un_v, energised=energised, tamper=tamper)
        if not len(ev):
            return []
        out = to_contract_events(ev, ts_ms, self.ids, un_v=self.un_v)
        for d, t in zip(out, self.clock.read(ts_ms)[ev.meter].tolist(), strict=True):
            d["ts"] = t
        return out
