"""A bank of electricity meters sampled as arrays: registers, voltages and powers of many meters at once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from gridloop.contract.quantities import POWER_ACTIVE, VOLTAGE, Quantity


@dataclass
class MeterSample:
    """Readings of the meters that sampled at one instant, column-wise."""

    ts_ms: int
    devices: list[str]
    seq: np.ndarray  # (n,)
    quantities: dict[str, np.ndarray]  # name (a contract Quantity) -> (n,) values

    def subset(self, idx: np.ndarray) -> MeterSample:
        """The readings of some of the meters (positions ``idx``), of the same kind of sample."""
        fields = {f: getattr(self, f) for f in self.__dataclass_fields__}
        fields.update(devices=[self.devices[i] for i in np.asarray(idx).tolist()], seq=self.seq[idx],
                      quantities={k: v[idx] for k, v in self.quantities.items()})
        meter_ts = fields.get("meter_ts_ms")
        if meter_ts is not None:
            fields["meter_ts_ms"] = np.asarray(meter_ts)[idx]
        return type(self)(**fields)

    def renamed(self, devices: list[str]) -> MeterSample:
        """The same readings under other device ids (same order)."""
        return dataclasses.replace(self, devices=devices)


def by_columns(samples: list[MeterSample]) -> list[list[MeterSample]]:
    """Samples grouped by their columns (quantity names and order, and the dtypes of seq and of each quantity),
    groups in order of first appearance: samples of one group can be joined column by column."""
    groups: dict[tuple, list[MeterSample]] = {}
    for s in samples:
        key = (np.asarray(s.seq).dtype.str, *((k, np.asarray(v).dtype.str) for k, v in s.quantities.items()))
        groups.setdefault(key, []).append(s)
    return list(groups.values())


class ElectricityMeterBank:
    """Three-phase residential meters (the Hyllie set): energy registers, voltage and power per phase.

    Registers integrate the power over each step; readings are quantised to the meter's resolution
    (0.1 Wh, 0.1 V, 0.1 W), so the registers stay consistent with the integrated power.
    """

    def __init__(self, ids: list[str], bus_index: np.ndarray, interval_s: float, initial_wh: np.ndarray) -> None:
        self.ids = ids
        self.bus_index = np.asarray(bus_index)
        self.interval_s = interval_s
        self.import_wh = np.asarray(initial_wh, dtype=float).copy()
        self.export_wh = np.zeros(len(ids))
        self.seq = np.zeros(len(ids), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def due(self, t_s: float) -> bool:
        """Meters sample at whole multiples of their interval (clock-aligned, like the pilot meters)."""
        return abs(t_s / self.interval_s - round(t_s / self.interval_s)) < 1e-9

    def sample(self, ts_ms: int, bus_v_ll: np.ndarray, p_w: np.ndarray) -> MeterSample:
        """Readings at one instant from bus line-to-line voltages (V) and the loads' active power (W)."""
        v_phase = np.round(bus_v_ll[self.bus_index] / np.sqrt(3.0), 1)
        p_phase = np.round(p_w / 3.0, 1)
        self.seq += 1
        quantities = {
            Quantity.ENERGY_ACTIVE_IMPORT: np.round(self.import_wh, 1),
            Quantity.ENERGY_ACTIVE_EXPORT: np.round(self.export_wh, 1),
            Quantity.POWER_ACTIVE_TOTAL: np.round(p_w, 1),
        }
        for name in VOLTAGE:
            quantities[name] = v_phase
        for name in POWER_ACTIVE:
            quantities[name] = p_phase
        return MeterSample(ts_ms, self.ids, self.seq.copy(), quantities)

    def sample_phases(self, ts_ms: int, v_phase: np.ndarray, p_phase: np.ndarray) -> MeterSample:
        """Readings at one instant from per-phase voltages (V) and active powers (W), (n, 3)."""
        self.seq += 1
        quantities = {
            Quantity.ENERGY_ACTIVE_IMPORT: np.round(self.import_wh, 1),
            Quantity.ENERGY_ACTIVE_EXPORT: np.round(self.export_wh, 1),
            Quantity.POWER_ACTIVE_TOTAL: np.round(p_phase.sum(axis=1), 1),
        }
        for k, name in enumerate(VOLTAGE):
            quantities[name] = np.round(v_phase[:, k], 1)
        for k, name in enumerate(POWER_ACTIVE):
            quantities[name] = np.round(p_phase[:, k], 1)
        return MeterSample(ts_ms, self.ids, self.seq.copy(), quantities)

    def integrate(self, p_w: np.ndarray, dt_s: float) -> None:
        """Advance the registers by the energy of a step at power p_w (import positive, export negative)."""
        wh = p_w * dt_s / 3600.0
        self.import_wh += np.clip(wh, 0.0, None)
        self.export_wh += np.clip(-wh, 0.0, None)
