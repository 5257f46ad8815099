"""The demand that drives the grid each step: which loads are metered homes, and their power.

Two sources behind one shape (the grid stage's ``Demand``): SimBench's measured profiles and the
synthetic appliance-level fleet of :mod:`gridloop.profiles` (the default). Both can be curtailed
for demand response, and both account the energy not served.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import numpy as np
import pandas as pd

from gridloop.profiles.fleet import HouseholdFleet
from gridloop.profiles.params import ITALIAN_FAMILY, SWEDISH_APARTMENT, HouseholdParams
from gridloop.profiles.simbench_household import SimbenchHouseholds
from gridloop.scenario.loader import ScenarioError, ScenarioProblem
from gridloop.scenario.model import Households

PRESETS = {"default": HouseholdParams(), "italian_family": ITALIAN_FAMILY, "swedish_apartment": SWEDISH_APARTMENT}


def build_demand(net, h: Households, start: datetime, period_ms: int, seed: int) -> SimbenchDemand | SyntheticDemand:
    """The households section's demand source on this net, stepped every period_ms.

    Raises ScenarioError (field ``grid.network``) for a net without homes, such as an MV-only SimBench grid."""
    if not household_loads(net).size:
        raise ScenarioError([ScenarioProblem("(scenario)", "grid.network", (
            "this network has no household loads to meter (an MV or HV grid alone has none): "
            "use a grid with its LV grids, e.g. 1-MVLV-rural-all-0-sw instead of 1-MV-rural--0-sw"))])
    step_s = period_ms / 1000
    if h.source == "simbench":
        return SimbenchDemand(net, start, step_s, seed, h.count, h.annual_kwh or 3000.0, h.scale_spread)
    params = PRESETS[h.preset]
    changes: dict = {"pv_share": h.pv_share, "ev_share": h.ev_share, "heat_pump_share": h.heat_pump_share}
    if h.annual_kwh is not None:
        changes["annual_kwh"] = h.annual_kwh
    if h.three_phase_share is not None:
        changes["three_phase_share"] = h.three_phase_share
    return SyntheticDemand(net, start, step_s, seed, replace(params, **changes), h.count)


def household_loads(net) -> np.ndarray:
    """Positions in net.load of the loads that are homes (and get meters)."""
    if "meter_kind" in net.load.columns:
        return np.flatnonzero(net.load.meter_kind.notna().to_numpy())
    if "profile" in net.load.columns:
        profile = net.load["profile"].astype(str).to_numpy().astype("U")
        return np.flatnonzero(np.char.startswith(profile, "H"))
    return np.arange(len(net.load))


class SimbenchDemand:
    """SimBench's measured 15-min profiles; curtailment caps a home's whole load (no appliance detail)."""

    def __init__(self, net, start: datetime, step_s: float, seed: int, count: int | None, annual_kwh: float,
                 spread: float) -> None:
        if "profile" not in net.load.columns or not getattr(net, "profiles", None):
            raise ValueError("households.source 'simbench' needs a SimBench grid (it carries the profiles)")
        self._src = SimbenchHouseholds.from_net(net, start, step_s, seed, count, annual_kwh, spread)
        self.load_index = self._src.load_index
        self.step_s = step_s
        self._cap_w = np.full(len(self.load_index), np.inf)
        self._not_served_wh = np.zeros(len(self.load_index))

    def at(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        p, q = self._src.at(t_s)
        homes_w = p[self.load_index] * 1e6
        capped = np.minimum(homes_w, self._cap_w)
        self._held_back_w = float((homes_w - capped).sum())
        self._not_served_wh += (homes_w - capped) * self.step_s / 3600.0
        scale = np.divide(capped, homes_w, out=np.ones_like(capped), where=homes_w > 0)
        p, q = p.copy(), q.copy()
        p[self.load_index] *= scale
        q[self.load_index] *= scale
        self._last = (p[self.load_index] * 1e6, q[self.load_index] * 1e6)
        return p, q

    def curtail(self, homes: np.ndarray, limit_w: float) -> None:
        self._cap_w[homes] = limit_w

    def release(self, homes: np.ndarray) -> None:
        self._cap_w[homes] = np.inf

    def energy_not_served_wh(self) -> np.ndarray:
        return self._not_served_wh.copy()

    def generation_at(self, t_s: float) -> np.ndarray | None:
        return self._src.sgen_at(t_s)

    def held_back_w(self) -> float:
        return getattr(self, "_held_back_w", 0.0)

    def home_phase(self) -> np.ndarray:
        return np.full(len(self.load_index), -1)

    def home_seconds(self, homes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """15-min measured profiles carry nothing within a step."""
        return None

    def home_phase_power(self) -> tuple[np.ndarray, np.ndarray]:
        p, q = self._last
        return np.repeat(p[:, None] / 3, 3, axis=1), np.repeat(q[:, None] / 3, 3, axis=1)


class SyntheticDemand:
    """Appliance-level synthetic homes on the net's household loads; other loads keep their set values."""

    def __init__(self, net, start: datetime, step_s: float, seed: int, params: HouseholdParams,
                 count: int | None) -> None:
        homes = household_loads(net)
        if count is not None:
            if count > len(homes):
                raise ValueError(f"households.count={count} but the grid has only {len(homes)} household loads")
            homes = np.sort(np.random.default_rng([seed, 4]).choice(homes, size=count, replace=False))
        self.load_index = homes
        self._base_p = net.load.p_mw.to_numpy(dtype=float).copy()
        self._base_q = net.load.q_mvar.to_numpy(dtype=float).copy()
        # the grid's other loads (shops, offices) follow their SimBench profiles where the grid has them
        self._others: SimbenchHouseholds | None = None
        if "profile" in net.load.columns and getattr(net, "profiles", None):
            self._others = SimbenchHouseholds.from_net(net, start, step_s, seed, None, 3000.0, 0.0)
        self._net_phase: np.ndarray | None = None
        if "phase" in net.load.columns:  # the pilot grids say which homes are single-phase, and on which phase
            self._net_phase = net.load.phase.to_numpy(dtype=float)[homes].astype(np.int64)
            params = replace(params, three_phase_share=float((self._net_phase < 0).mean()))
        self.fleet = HouseholdFleet(len(homes), pd.Timestamp(start), int(step_s), seed, params)

    def at(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        p_w, q_var = self.fleet.step()
        p, q = self._others.at(t_s) if self._others is not None else (self._base_p.copy(), self._base_q.copy())
        p[self.load_index] = p_w * 1e-6
        q[self.load_index] = q_var * 1e-6
        return p, q

    def curtail(self, homes: np.ndarray, limit_w: float) -> None:
        mask = np.zeros(len(self.load_index), dtype=bool)
        mask[homes] = True
        self.fleet.curtail(mask, limit_w)

    def release(self, homes: np.ndarray) -> None:
        mask = np.zeros(len(self.load_index), dtype=bool)
        mask[homes] = True
        self.fleet.release(mask)

    def energy_not_served_wh(self) -> np.ndarray:
        return np.asarray(self.fleet.energy_not_served_wh, dtype=float).copy()

    def generation_at(self, t_s: float) -> np.ndarray | None:
        return self._others.sgen_at(t_s) if self._others is not None else None

    def held_back_w(self) -> float:
        return -float(self.fleet.flex.last_delta_p.sum())

    def home_phase(self) -> np.ndarray:
        if self._net_phase is not None:
            return self._net_phase.copy()
        return np.where(self.fleet.three_phase, -1, self.fleet.phase)

    def home_seconds(self, homes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Per second of the last step, the appliance P (W) and Q (var) of some homes, (len(homes), step_s)."""
        return self.fleet.last_step_seconds(homes)

    def home_phase_power(self) -> tuple[np.ndarray, np.ndarray]:
        p3, q3 = self.fleet.last_phase()
        if self._net_phase is None:
            return p3, q3
        # the grid's phase wins: a single-phase home draws everything on its phase
        single = self._net_phase >= 0
        on = np.eye(3)[np.maximum(self._net_phase, 0)]
        p_tot, q_tot = p3.sum(axis=1), q3.sum(axis=1)
        three_split = ~single & ~self.fleet.three_phase  # three-phase at the grid, single in the model
        p3 = np.where(single[:, None], on * p_tot[:, None], np.where(three_split[:, None], p_tot[:, None] / 3, p3))
        q3 = np.where(single[:, None], on * q_tot[:, None], np.where(three_split[:, None], q_tot[:, None] / 3, q3))
        return p3, q3
