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


@dataclass(frozen=True)
class Profiled:
    """Absolute values of elements that follow shared relative profiles, kept factored (T x profiles, not
    T x elements: a 40-substation district would need gigabytes): value[t, e] = shares[t, column[e]] * scale[e].
    Same rule as ``simbench.get_absolute_values``: an element without a profile keeps its set value."""

    shares: np.ndarray  # (n_quarters, n_profiles + 1); the last column is ones
    column: np.ndarray  # (n_elements,)
    scale: np.ndarray  # (n_elements,)

    @classmethod
    def of(cls, table: pd.DataFrame, relative: list[pd.DataFrame], value: str, suffix: str = "") -> Profiled:
        names = table["profile"] + suffix if "profile" in table.columns else pd.Series([None] * len(table))
        wanted = list(dict.fromkeys(n for n in names if isinstance(n, str)))
        found = {n: frame[n].to_numpy(dtype=float) for frame in reversed(relative) for n in wanted if n in frame}
        missing = [n for n in wanted if n not in found]
        if missing:
            raise ValueError(f"profiles missing from the grid's profile data: {missing}")
        n_t = len(relative[0])
        shares = np.column_stack([*(found[n] for n in wanted), np.ones(n_t)])
        position = {n: k for k, n in enumerate(wanted)}
        column = np.array([position.get(n, len(wanted)) if isinstance(n, str) else len(wanted) for n in names],
                          dtype=np.int64)
        return cls(shares, column, table[value].to_numpy(dtype=float).copy())

    def row(self, i: int) -> np.ndarray:
        return self.shares[i, self.column] * self.scale

    def total(self, elements: np.ndarray) -> np.ndarray:
        """Sum over time of the given elements' values."""
        return self.shares.sum(axis=0)[self.column[elements]] * self.scale[elements]


@dataclass
class SimbenchHouseholds:
    """Per-step active/reactive power of every load of a SimBench net; households scaled by seed."""

    load_index: np.ndarray  # positions (in net.load order) of the household loads that get meters
    p_mw: Profiled  # absolute active power per 15 min, all loads
    q_mvar: Profiled
    start: datetime
    step_s: float
    sgen_p_mw: Profiled | None = None  # PV/wind feed-in, where the grid has profiles

    @classmethod
    def from_net(
        cls, net, start: datetime, step_s: float, seed: int, count: int | None, annual_kwh: float, spread: float
    ) -> SimbenchHouseholds:
        profiles = net.profiles
        p = Profiled.of(net.load, [profiles["load"]], "p_mw", "_pload")
        q = Profiled.of(net.load, [profiles["load"]], "q_mvar", "_qload")
        profile = net.load["profile"].astype(str).to_numpy()
        households = np.flatnonzero(np.char.startswith(profile.astype("U"), "H"))
        rng = np.random.default_rng(seed)
        if count is not None:
            if count > len(households):
                raise ValueError(f"households.count={count} but the grid has only {len(households)} household loads")
            households = np.sort(rng.choice(households, size=count, replace=False))
        annual_mwh = p.total(households) * QUARTER_S / 3600.0
        spread_factor = rng.lognormal(mean=-0.5 * spread**2, sigma=spread, size=len(households)) if spread else 1.0
        scale = annual_kwh / 1000.0 / np.maximum(annual_mwh, 1e-9) * spread_factor
        p.scale[households] *= scale
        q.scale[households] *= scale
        generation = [profiles[k] for k in ("powerplants", "renewables") if k in profiles]
        sgen_p = Profiled.of(net.sgen, generation, "p_mw") if generation and len(net.sgen) else None
        return cls(households, p, q, start, step_s, sgen_p)

    def at(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Demand of every load at simulated second t_s after start, linearly interpolated between quarters."""
        i0, i1, w = self._position(t_s)
        p, q = self.p_mw, self.q_mvar
        return (1 - w) * p.row(i0) + w * p.row(i1), (1 - w) * q.row(i0) + w * q.row(i1)

    def sgen_at(self, t_s: float) -> np.ndarray | None:
        """Feed-in of every static generator at t_s (None when the grid has no generator profiles)."""
        if self.sgen_p_mw is None:
            return None
        i0, i1, w = self._position(t_s)
        return (1 - w) * self.sgen_p_mw.row(i0) + w * self.sgen_p_mw.row(i1)

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
        n = self.p_mw.shares.shape[0]
        i0 = int(np.floor(position)) % n
        i1 = (i0 + 1) % n
        return i0, i1, float(position - np.floor(position))
