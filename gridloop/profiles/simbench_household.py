"""Household demand from SimBench's shipped load profiles (real 15-min data), scaled per home by seed.

The placeholder source of the walking skeleton, kept as ``households.source: simbench``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import numpy as np
import pandas as pd

QUARTER_S = 900.0


@dataclass
class SimbenchHouseholds:
    """Per-step active/reactive power of every load of a SimBench net; households scaled by seed."""

    load_index: np.ndarray  # positions (in net.load order) of the household loads that get meters
    p_mw: np.ndarray  # (n_quarters, n_load) absolute active power per 15 min, all loads
    q_mvar: np.ndarray
    start: datetime
    step_s: float
    sgen_p_mw: np.ndarray | None = None  # (n_quarters, n_sgen) PV/wind feed-in, where the grid has profiles

    @classmethod
    def from_net(
        cls, net, start: datetime, step_s: float, seed: int, count: int | None, annual_kwh: float, spread: float
    ) -> SimbenchHouseholds:
        import simbench as sb

        absolute = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
        p = absolute[("load", "p_mw")].to_numpy(dtype=float)
        q = absolute[("load", "q_mvar")].to_numpy(dtype=float)
        profile = net.load["profile"].astype(str).to_numpy()
        households = np.flatnonzero(np.char.startswith(profile.astype("U"), "H"))
        rng = np.random.default_rng(seed)
        if count is not None:
            if count > len(households):
                raise ValueError(f"households.count={count} but the grid has only {len(households)} household loads")
            households = np.sort(rng.choice(households, size=count, replace=False))
        annual_mwh = p[:, households].sum(axis=0) * QUARTER_S / 3600.0
        spread_factor = rng.lognormal(mean=-0.5 * spread**2, sigma=spread, size=len(households)) if spread else 1.0
        scale = annual_kwh / 1000.0 / np.maximum(annual_mwh, 1e-9) * spread_factor
        p[:, households] *= scale
        q[:, households] *= scale
        sgen = absolute.get(("sgen", "p_mw"))
        sgen_p = sgen.to_numpy(dtype=float) if sgen is not None and sgen.shape[1] == len(net.sgen) else None
        return cls(households, p, q, start, step_s, sgen_p)

    def at(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Demand of every load at simulated second t_s after start, linearly interpolated between quarters."""
        i0, i1, w = self._position(t_s)
        return (1 - w) * self.p_mw[i0] + w * self.p_mw[i1], (1 - w) * self.q_mvar[i0] + w * self.q_mvar[i1]

    def sgen_at(self, t_s: float) -> np.ndarray | None:
        """Feed-in of every static generator at t_s (None when the grid has no generator profiles)."""
        if self.sgen_p_mw is None:
            return None
        i0, i1, w = self._position(t_s)
        return (1 - w) * self.sgen_p_mw[i0] + w * self.sgen_p_mw[i1]

    @cached_property
    def _start_in_year_s(self) -> float:
        """Seconds from the start of the profiles' year (UTC) to the scenario start."""
        year_start = pd.Timestamp(self.start).tz_convert("UTC").replace(
            month=1, day=1, hour=0, minute=0, second=0, microsecond=0
        )
        return (pd.Timestamp(self.start).tz_convert("UTC") - year_start).total_seconds()

    def _position(self, t_s: float) -> tuple[int, int, float]:
        offset = self._start_in_year_s + t_s
        position = offset / QUARTER_S
        n = self.p_mw.shape[0]
        i0 = int(np.floor(position)) % n
        i1 = (i0 + 1) % n
        return i0, i1, float(position - np.floor(position))
