"""Single-phase meters (Turin's ST boards), each on one phase (shared behaviour: :mod:`.bank`)."""

from __future__ import annotations

import numpy as np

from gridloop.contract.quantities import CURRENT, POWER_ACTIVE, POWER_FACTOR, POWER_REACTIVE, VOLTAGE, Quantity
from gridloop.virtual_meters.accuracy import AccuracyClass, MeterClock, quantise
from gridloop.virtual_meters.meter_types.bank import ClockedSample, MeterBank, Resolution, derive_current_pf, per_meter


class SinglePhaseMeterBank(MeterBank):
    """Single-phase meters (Turin's ST boards), each on one phase: its quantities appear under that phase only.

    Columns of the other phases are NaN; :func:`split_finite` / :func:`encode_envelopes` drop them per meter.
    """

    def __init__(self, ids: list[str], phase: np.ndarray | int, interval_s: float, rng: np.random.Generator, *,
                 accuracy: str | AccuracyClass = "B", reactive_accuracy: str | AccuracyClass = "R2",
                 voltage_accuracy: str | AccuracyClass = "V05", clock: MeterClock | None = None,
                 initial_import_wh: float | np.ndarray = 0.0, initial_export_wh: float | np.ndarray = 0.0,
                 resolution: Resolution | None = None, un_v: float = 230.0) -> None:
        super().__init__(ids, interval_s, rng, accuracy, reactive_accuracy, voltage_accuracy, clock,
                         initial_import_wh, initial_export_wh, resolution, un_v)
        self.phase = np.broadcast_to(np.asarray(phase, dtype=np.int64), (len(ids),)).copy()
        if ((self.phase < 0) | (self.phase > 2)).any():
            raise ValueError("phase must be 0 (l1), 1 (l2) or 2 (l3)")
        self._on = self.phase[:, None] == np.arange(3)[None, :]  # (n, 3) connected phase
        self._last_v = np.where(self._on, un_v, np.nan)

    def integrate(self, p_w: np.ndarray, dt_s: float) -> None:
        """Advance the registers by a step of ``dt_s`` at active power ``p_w`` (n,), + is import."""
        self._integrate_active(np.asarray(p_w, dtype=float), dt_s)

    def _measure(self, v: np.ndarray, p: np.ndarray, q: np.ndarray | None) -> dict[str, np.ndarray]:
        n, r, rng = len(self), self.res, self.rng
        vm = self.voltage_error.instantaneous(per_meter(v, n), rng)
        pm = self.active_error.instantaneous(per_meter(p, n), rng)
        qm = self.reactive_error.instantaneous(per_meter(0.0 if q is None else q, n), rng)
        current, pf = derive_current_pf(vm, pm, qm)
        self._last_v = np.where(self._on, vm[:, None], np.nan)
        return {"v": quantise(vm, r.voltage_v), "i": quantise(current, r.current_a), "p": quantise(pm, r.power_w),
                "q": quantise(qm, r.reactive_var), "pf": quantise(pf, r.power_factor)}

    def _on_phase(self, values: np.ndarray, k: int) -> np.ndarray:
        return np.where(self._on[:, k], values, np.nan)

    def sample(self, ts_ms: int, v_v: np.ndarray, p_w: np.ndarray, q_var: np.ndarray | None = None) -> ClockedSample:
        """Readings at one instant from the connected phase's voltage (V), active (W) and reactive (var) power, (n,)."""
        m = self._measure(v_v, p_w, q_var)
        quantities = {
            Quantity.ENERGY_ACTIVE_IMPORT: self.import_wh.display(),
            Quantity.ENERGY_ACTIVE_EXPORT: self.export_wh.display(),
            Quantity.POWER_ACTIVE_TOTAL: m["p"],
            Quantity.POWER_REACTIVE_TOTAL: m["q"],
        }
        for k in range(3):
            quantities[VOLTAGE[k]] = self._on_phase(m["v"], k)
            quantities[CURRENT[k]] = self._on_phase(m["i"], k)
            quantities[POWER_ACTIVE[k]] = self._on_phase(m["p"], k)
            quantities[POWER_REACTIVE[k]] = self._on_phase(m["q"], k)
            quantities[POWER_FACTOR[k]] = self._on_phase(m["pf"], k)
        return self._stamp(ts_ms, quantities)
