"""Three-phase substation meters (Hyllie's EMH set): residential quantities plus reactive energy, currents,
frequency, power factors and reactive powers (shared behaviour: :mod:`.bank`)."""

from __future__ import annotations

import numpy as np

from gridloop.contract.quantities import CURRENT, POWER_ACTIVE, POWER_FACTOR, POWER_REACTIVE, VOLTAGE, Quantity
from gridloop.virtual_meters.accuracy import AccuracyClass, MeterClock, Register, quantise, truncate
from gridloop.virtual_meters.meter_types.bank import ClockedSample, MeterBank, Resolution, derive_current_pf, per_meter

_FUSE_MAX_METERS = 256  # fusing saves numpy calls but copies the arrays: a gain for banks of a few meters only


class SubstationMeterBank(MeterBank):
    """Three-phase substation meters (Hyllie's EMH set): the residential quantities plus reactive energy,
    currents, frequency, power factors and reactive powers, from per-phase V, P and Q."""

    def __init__(self, ids: list[str], interval_s: float, rng: np.random.Generator, *,
                 accuracy: str | AccuracyClass = "C", reactive_accuracy: str | AccuracyClass = "R2",
                 voltage_accuracy: str | AccuracyClass = "V05", clock: MeterClock | None = None,
                 initial_import_wh: float | np.ndarray = 0.0, initial_export_wh: float | np.ndarray = 0.0,
                 initial_reactive_import_varh: float | np.ndarray = 0.0,
                 initial_reactive_export_varh: float | np.ndarray = 0.0,
                 resolution: Resolution | None = None, un_v: float = 230.0,
                 frequency_noise_hz: float = 0.002) -> None:
        super().__init__(ids, interval_s, rng, accuracy, reactive_accuracy, voltage_accuracy, clock,
                         initial_import_wh, initial_export_wh, resolution, un_v)
        n = len(ids)
        self.reactive_import_varh = Register(n, self.res.reactive_varh, initial_reactive_import_varh)
        self.reactive_export_varh = Register(n, self.res.reactive_varh, initial_reactive_export_varh)
        self.frequency_noise_hz = frequency_noise_hz

    def integrate(self, p_w: np.ndarray, q_var: np.ndarray, dt_s: float) -> None:
        """Advance the registers by a step of ``dt_s`` at per-phase P (W) and Q (var), (n, 3); + is import."""
        self._integrate_active(np.asarray(p_w, dtype=float).sum(axis=1), dt_s)
        varh = self.reactive_error.systematic(np.asarray(q_var, dtype=float).sum(axis=1)) * (dt_s / 3600.0)
        self.reactive_import_varh.add(varh)
        self.reactive_export_varh.add(-varh)

    def sample(self, ts_ms: int, v_phase: np.ndarray, p_w: np.ndarray, q_var: np.ndarray,
               frequency_hz: float | np.ndarray = 50.0) -> ClockedSample:
        """Readings at one instant from per-phase voltages (V), active (W) and reactive (var) powers, (n, 3)."""
        n, r, rng = len(self), self.res, self.rng
        v = self.voltage_error.instantaneous(per_meter(v_phase, n, (3,)), rng)
        p = self.active_error.instantaneous(per_meter(p_w, n, (3,)), rng)
        q = self.reactive_error.instantaneous(per_meter(q_var, n, (3,)), rng)
        current, pf = derive_current_pf(v, p, q)
        f = per_meter(frequency_hz, n) + self.frequency_noise_hz * rng.standard_normal(n)
        self._last_v = v
        # quantise is elementwise: values of one resolution are stacked and quantised in one go (few numpy calls)
        fuse = n <= _FUSE_MAX_METERS
        tenths = _quantised([v, p, q, p.sum(axis=1, keepdims=True), q.sum(axis=1, keepdims=True)],
                            [r.voltage_v, r.power_w, r.reactive_var, r.power_w, r.reactive_var], fuse)
        vq, pq, qq, p_total, q_total = tenths
        iq, fq = _quantised([current, f[:, None]], [r.current_a, r.frequency_hz], fuse)
        pfq = quantise(pf, r.power_factor)
        registers = (self.import_wh, self.export_wh, self.reactive_import_varh, self.reactive_export_varh)
        shown = _displayed(registers, fuse)
        quantities = {
            Quantity.ENERGY_ACTIVE_IMPORT: shown[0],
            Quantity.ENERGY_ACTIVE_EXPORT: shown[1],
            Quantity.ENERGY_REACTIVE_IMPORT: shown[2],
            Quantity.ENERGY_REACTIVE_EXPORT: shown[3],
            Quantity.POWER_ACTIVE_TOTAL: p_total[:, 0],
            Quantity.POWER_REACTIVE_TOTAL: q_total[:, 0],
            Quantity.FREQUENCY: fq[:, 0],
        }
        for k in range(3):
            quantities[VOLTAGE[k]] = vq[:, k]
            quantities[CURRENT[k]] = iq[:, k]
            quantities[POWER_ACTIVE[k]] = pq[:, k]
            quantities[POWER_REACTIVE[k]] = qq[:, k]
            quantities[POWER_FACTOR[k]] = pfq[:, k]
        return self._stamp(ts_ms, quantities)


def _quantised(blocks: list[np.ndarray], resolutions: list[float], fuse: bool) -> list[np.ndarray]:
    """Each (n, k) block quantised to its resolution; with ``fuse``, blocks of one resolution share one
    :func:`quantise` (elementwise, so the values are the same either way)."""
    if not fuse or len(set(resolutions)) > 1:
        return [quantise(b, res) for b, res in zip(blocks, resolutions, strict=True)]
    joined = quantise(np.concatenate(blocks, axis=1), resolutions[0])
    out, lo = [], 0
    for b in blocks:
        out.append(joined[:, lo:lo + b.shape[1]])
        lo += b.shape[1]
    return out


def _displayed(registers: tuple[Register, ...], fuse: bool) -> list[np.ndarray]:
    """What each register shows; with ``fuse``, registers of one resolution are truncated in one go."""
    if not fuse or len({reg.resolution for reg in registers}) > 1:
        return [reg.display() for reg in registers]
    return list(truncate(np.stack([reg.value for reg in registers]), registers[0].resolution))
