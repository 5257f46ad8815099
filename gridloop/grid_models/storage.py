"""Vectorised battery fleet whose charging power is added to the grid as extra load.

Sign convention: positive power charges the battery (consumption seen by the grid), negative
discharges it.  State of charge is energy in MWh, limited to [soc_min, soc_max] · capacity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class BatteryFleet:
    """N batteries, each attached to a position in ``net.load`` (``load_pos``)."""

    load_pos: np.ndarray  # (n,) position in net.load that carries the battery's power
    capacity_mwh: np.ndarray  # (n,)
    p_charge_max_mw: np.ndarray  # (n,) >= 0
    p_discharge_max_mw: np.ndarray  # (n,) >= 0
    soc_mwh: np.ndarray  # (n,) current stored energy
    eta_charge: np.ndarray | float = 0.95  # grid -> cell
    eta_discharge: np.ndarray | float = 0.95  # cell -> grid
    soc_min_frac: np.ndarray | float = 0.0
    soc_max_frac: np.ndarray | float = 1.0
    p_mw: np.ndarray = field(init=False)  # last applied power per battery

    def __post_init__(self) -> None:
        n = np.asarray(self.load_pos).shape[0]

        def vec(x: np.ndarray | float) -> np.ndarray:
            return np.broadcast_to(np.asarray(x, dtype=float), (n,)).copy()

        self.load_pos = np.asarray(self.load_pos, dtype=np.int64)
        self.capacity_mwh = vec(self.capacity_mwh)
        self.p_charge_max_mw = vec(self.p_charge_max_mw)
        self.p_discharge_max_mw = vec(self.p_discharge_max_mw)
        self.eta_charge = vec(self.eta_charge)
        self.eta_discharge = vec(self.eta_discharge)
        self.soc_min_frac = vec(self.soc_min_frac)
        self.soc_max_frac = vec(self.soc_max_frac)
        if np.any(
            (self.eta_charge <= 0) | (self.eta_charge > 1) | (self.eta_discharge <= 0) | (self.eta_discharge > 1)
        ):
            raise ValueError("efficiencies must lie in (0, 1]")
        if np.any(self.soc_min_frac > self.soc_max_frac):
            raise ValueError("soc_min_frac must not exceed soc_max_frac")
        lo, hi = self.soc_min_frac * self.capacity_mwh, self.soc_max_frac * self.capacity_mwh
        self.soc_mwh = np.clip(vec(self.soc_mwh), lo, hi)
        self.p_mw = np.zeros(n)

    @property
    def soc_frac(self) -> np.ndarray:
        """State of charge as a fraction of capacity."""
        return np.divide(self.soc_mwh, self.capacity_mwh, out=np.zeros_like(self.soc_mwh), where=self.capacity_mwh > 0)

    def step(self, p_request_mw: np.ndarray, dt_h: float) -> np.ndarray:
        """Apply requested powers for ``dt_h`` hours within power and energy limits; return actual MW."""
        if dt_h <= 0:
            raise ValueError("dt_h must be positive")
        p = np.clip(np.asarray(p_request_mw, dtype=float), -self.p_discharge_max_mw, self.p_charge_max_mw)
        headroom = self.soc_max_frac * self.capacity_mwh - self.soc_mwh
        available = self.soc_mwh - self.soc_min_frac * self.capacity_mwh
        p = np.minimum(p, np.maximum(headroom, 0.0) / (self.eta_charge * dt_h))
        p = np.maximum(p, -np.maximum(available, 0.0) * self.eta_discharge / dt_h)
        energy = np.where(p >= 0, p * self.eta_charge, p / self.eta_discharge) * dt_h
        self.soc_mwh = self.soc_mwh + energy
        self.p_mw = p
        return p

    def self_consumption_request(self, home_net_p_mw: np.ndarray) -> np.ndarray:
        """Request that cancels each host's net demand: charge from surplus, discharge into demand."""
        return -np.asarray(home_net_p_mw, dtype=float)[self.load_pos]

    def add_to_loads(self, load_p_mw: np.ndarray) -> np.ndarray:
        """Loads' active power with the batteries' last power added (several batteries per load allowed)."""
        base = np.asarray(load_p_mw, dtype=float)
        return base + np.bincount(self.load_pos, weights=self.p_mw, minlength=base.shape[0])[: base.shape[0]]
