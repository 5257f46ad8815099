"""1 Hz home meters for load disaggregation (NIALM): single-phase meters sampled every second."""

from __future__ import annotations

import numpy as np

from gridloop.contract.quantities import CURRENT, POWER_ACTIVE, POWER_FACTOR, VOLTAGE, Quantity
from gridloop.virtual_meters.accuracy import AccuracyClass, MeterClock
from gridloop.virtual_meters.meter_types.bank import ClockedSample, Resolution
from gridloop.virtual_meters.meter_types.single_phase import SinglePhaseMeterBank


class HomeMeter1Hz(SinglePhaseMeterBank):
    """Home meters for load disaggregation (NIALM): voltage, current and active power every second.

    ``sample_window`` produces many seconds at once from (n, T) inputs, integrating the register per second.
    """

    def __init__(self, ids: list[str], rng: np.random.Generator, phase: np.ndarray | int = 0, *,
                 accuracy: str | AccuracyClass = "1", clock: MeterClock | None = None,
                 initial_import_wh: float | np.ndarray = 0.0, un_v: float = 230.0,
                 resolution: Resolution | None = None) -> None:
        super().__init__(ids, phase, 1.0, rng, accuracy=accuracy, clock=clock,
                         initial_import_wh=initial_import_wh, un_v=un_v,
                         resolution=resolution or Resolution(current_a=0.001))

    def sample(self, ts_ms: int, v_v: np.ndarray, p_w: np.ndarray, q_var: np.ndarray | None = None) -> ClockedSample:
        """One second's readings: energy import, and V, I, P (and PF) on the connected phase only."""
        m = self._measure(v_v, p_w, q_var)
        quantities = {Quantity.ENERGY_ACTIVE_IMPORT: self.import_wh.display(), Quantity.POWER_ACTIVE_TOTAL: m["p"]}
        for k in range(3):
            quantities[VOLTAGE[k]] = self._on_phase(m["v"], k)
            quantities[CURRENT[k]] = self._on_phase(m["i"], k)
            quantities[POWER_ACTIVE[k]] = self._on_phase(m["p"], k)
            quantities[POWER_FACTOR[k]] = self._on_phase(m["pf"], k)
        return self._stamp(ts_ms, quantities)

    def sample_window(self, ts0_ms: int, v_v: np.ndarray, p_w: np.ndarray,
                      q_var: np.ndarray | None = None) -> list[ClockedSample]:
        """T one-second samples from (n, T) inputs: sample at ``ts0 + k s``, then integrate that second."""
        v, p = np.asarray(v_v, dtype=float), np.asarray(p_w, dtype=float)
        out = []
        for k in range(p.shape[1]):  # loop over seconds, vectorised over meters
            out.append(self.sample(ts0_ms + 1000 * k, v[:, k], p[:, k], None if q_var is None else q_var[:, k]))
            self.integrate(p[:, k], 1.0)
        return out
