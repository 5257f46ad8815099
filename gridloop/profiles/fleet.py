"""HouseholdFleet: the streamed, vectorised household demand model the engine steps."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from gridloop.profiles.appliances import ACTIVITY_CLASSES, STANDBY
from gridloop.profiles.behaviour import DAY_S, DayBuilder, quantise
from gridloop.profiles.flexibility import Flexibility
from gridloop.profiles.heat_pump import HeatPumps, OutdoorTemperature
from gridloop.profiles.households import CLASS_INDEX, Households
from gridloop.profiles.ledger import KinkLedger
from gridloop.profiles.params import HouseholdParams
from gridloop.profiles.pv import RooftopPV

HP_TAN_PHI = 0.33  # heat pump compressor at cos φ ≈ 0.95


def _pvlib_zone(ts: pd.Timestamp) -> str:
    """A zone name pvlib accepts: the IANA name, or Etc/GMT∓N for a fixed UTC offset such as +01:00."""
    name = str(ts.tz)
    if "/" in name or name == "UTC":
        return name
    hours = round(ts.utcoffset().total_seconds() / 3600.0)
    return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"  # the Etc zones' signs are inverted


_ZERO = np.zeros(1)
_NO_PHASES = np.zeros((0, 3))


def _phase_gather_index(phase: np.ndarray, three_phase: np.ndarray) -> np.ndarray:
    """Flat (n x 3) positions in [home totals (n), three-phase homes' phases (3 each), a zero] of each home-phase.

    A single-phase home's total sits on its phase and 0 on the others; a three-phase home takes its own phases.
    """
    n = phase.shape[0]
    tp = np.flatnonzero(three_phase)
    single = np.flatnonzero(~three_phase)
    zero_at = n + 3 * tp.shape[0]
    index = np.full((n, 3), zero_at, dtype=np.intp)
    index[single, phase[single]] = single
    index[tp, :] = n + 3 * np.arange(tp.shape[0])[:, None] + np.arange(3)
    return index.reshape(-1)


class HouseholdFleet:
    """n_homes households advanced step by step; returns mean P (W) and Q (var) per home per step.

    Behaviour is generated one calendar day at a time from a random stream keyed by (seed, date), so
    output is deterministic per seed and independent of the step length: energies integrate exactly.
    """

    def __init__(
        self,
        n_homes: int,
        start: pd.Timestamp | dt.datetime,
        step_s: int = 60,
        seed: int = 0,
        params: HouseholdParams | None = None,
    ) -> None:
        if int(step_s) != step_s or step_s < 1:
            raise ValueError("step_s must be a positive whole number of seconds")
        self.params = params or HouseholdParams()
        self.n_homes = int(n_homes)
        self.step_s = int(step_s)
        self.seed = int(seed)
        ts = pd.Timestamp(start)
        self._midnight = ts.normalize()
        offset = (ts - self._midnight).total_seconds()
        if offset != int(offset):
            raise ValueError("start must be on a whole second")
        self._t = int(offset)  # seconds since local midnight of the start date
        self._t0 = self._t
        self._builder = DayBuilder(self.n_homes, self.params, self.seed, self._midnight.date())
        self._ledger = KinkLedger(self.n_homes, self._builder.hh.three_phase)
        self.flex = Flexibility(self.n_homes)
        hh = self._builder.hh
        sb_phase = hh.class_phase[:, CLASS_INDEX[STANDBY.name]]
        sb_q = quantise(self._builder.standby_w * np.tan(np.arccos(STANDBY.power_factor)))
        self._ledger.add_level(self._builder.standby_w, sb_q, sb_phase)
        self._pv: RooftopPV | None = None
        if self.params.pv_share > 0:
            tz = _pvlib_zone(ts) if ts.tz is not None else self.params.timezone
            self._pv = RooftopPV(
                np.random.default_rng([self.seed, 3]), self.n_homes, self.params.pv_share, self.params.pv_kwp,
                self.params.latitude, self.params.longitude, tz, self._midnight.date(), self.seed,
                self.params.pv_cloudiness,
            )
        self._last_pv_j = np.zeros(self.n_homes)
        self._hp: HeatPumps | None = None
        self._last_hp_w = np.zeros(self.n_homes)
        if self.params.heat_pump_share > 0:
            self._hp = HeatPumps(np.random.default_rng([self.seed, 5]), self.n_homes, self.params.heat_pump_share,
                                 ts, self.seed, outdoor=OutdoorTemperature.of(self.params, ts, self.seed))
        self._tp = np.flatnonzero(hh.three_phase)
        self._phase_source = _phase_gather_index(hh.phase, hh.three_phase)
        # the previous day may still be running appliances at the start time
        self._next_day = -1
        self._generate_until(self._t + 1)
        self._ledger.skip_to(self._t)
        self._block_i = 0
        self._block_n = 0
        self._last_i = -1
        self._last_e: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def phase(self) -> np.ndarray:
        """Connection phase (0/1/2) of each single-phase home (three-phase homes: a reference phase only)."""
        return self._builder.hh.phase

    @property
    def three_phase(self) -> np.ndarray:
        """True for homes with a three-phase connection (appliances spread over the phases)."""
        return self._builder.hh.three_phase

    @property
    def households(self) -> Households:
        """Static per-home attributes (size, ownership, phases) as arrays."""
        return self._builder.hh

    @property
    def time(self) -> pd.Timestamp:
        """Start of the next step."""
        return self._midnight + pd.Timedelta(seconds=self._t)

    def _generate_until(self, t1: int) -> None:
        while self._next_day * DAY_S < t1:
            self._ledger.add(self._builder.build(self._next_day))
            self._next_day += 1

    def step(self) -> tuple[np.ndarray, np.ndarray]:
        """Advance one step; mean active (W) and reactive (var) power of each home over the step."""
        dt_s = self.step_s
        if self._block_i >= self._block_n:
            n = self._ledger.block_steps(dt_s)
            self._generate_until(self._t + n * dt_s)
            self._ledger.open_block(self._t, dt_s, n)
            self._block_i, self._block_n = 0, n
        i = self._block_i
        all_p, all_q = self._ledger.energies("total", dt_s)
        e_p, e_q = all_p[i], all_q[i]
        if self.flex.active:
            flex_p, flex_q = self._ledger.energies("flex", dt_s)
            e_p, e_q = self.flex.apply(e_p.copy(), e_q.copy(), flex_p[i], flex_q[i], dt_s)
        if self._pv is not None:
            self._last_pv_j = self._pv.energy(self._t, self._t + dt_s)
            e_p = e_p - self._last_pv_j
        if self._hp is not None:  # temperature-driven space heating, power factor ~0.95
            self._last_hp_w = self._hp.step(self._t - self._t0, dt_s)
            e_p = e_p + self._last_hp_w * dt_s
            e_q = e_q + self._last_hp_w * dt_s * HP_TAN_PHI
        self._block_i += 1
        self._last_i = i
        self._t += dt_s
        self._last_e = (e_p, e_q)
        return e_p / dt_s, e_q / dt_s

    def last_energy_j(self) -> np.ndarray:
        """Active energy (J) of each home in the last step; exact multiple of 1/16 J without curtailment."""
        assert self._last_e is not None, "call step() first"
        return self._last_e[0]

    def last_phase(self) -> tuple[np.ndarray, np.ndarray]:
        """(n_homes, 3) per-phase P (W) and Q (var) of the last step; single-phase homes on their phase."""
        assert self._last_e is not None, "call step() first"
        dt_s = self.step_s
        tp = self._tp
        p3 = q3 = _NO_PHASES
        if tp.shape[0]:
            ph_p, ph_q = self._ledger.energies("phase", dt_s)
            p3 = ph_p[self._last_i].reshape(-1, 3) / dt_s
            q3 = ph_q[self._last_i].reshape(-1, 3) / dt_s
            # curtailment/rebound of three-phase homes in proportion to phase load (keeps phases >= 0);
            # a three-phase PV inverter feeds the three phases evenly
            if self.flex.last_delta_p.any():
                tot = p3.sum(axis=1, keepdims=True)
                share = np.divide(p3, tot, out=np.full_like(p3, 1.0 / 3.0), where=tot > 0)
                p3 += share * self.flex.last_delta_p[tp][:, None]
                q3 += share * self.flex.last_delta_q[tp][:, None]
            if self._pv is not None:
                p3 -= self._last_pv_j[tp][:, None] / (3.0 * dt_s)
            if self._hp is not None:  # a three-phase heat pump draws evenly on the three phases
                p3 += self._last_hp_w[tp][:, None] / 3.0
                q3 += self._last_hp_w[tp][:, None] * HP_TAN_PHI / 3.0
        # one gather from [home totals, three-phase homes' phases, 0]: no zeros-and-scatter per step
        p = np.concatenate((self._last_e[0] / dt_s, p3.reshape(-1), _ZERO)).take(self._phase_source)
        q = np.concatenate((self._last_e[1] / dt_s, q3.reshape(-1), _ZERO)).take(self._phase_source)
        return p.reshape(self.n_homes, 3), q.reshape(self.n_homes, 3)

    def last_step_seconds(self, homes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(len(homes), step_s) appliance P (W) and Q (var) of some homes in each second of the last step.

        The appliances' own demand (standby included) as it switches within the step, before curtailment,
        PV and heat pumps (those are constant over a step, so they move the step's mean only).
        """
        assert self._last_e is not None, "call step() first"
        return self._ledger.step_seconds(np.asarray(homes, dtype=np.int64), self._last_i, self.step_s)

    def last_heat_pump_w(self) -> np.ndarray:
        """Heat-pump electrical power (W) of each home in the last step; already included in step()'s P."""
        return self._last_hp_w

    @property
    def heat_pump(self) -> HeatPumps | None:
        return self._hp

    @property
    def pv_kwp(self) -> np.ndarray:
        """Installed PV capacity per home (kWp, 0 without PV)."""
        return self._pv.kwp if self._pv is not None else np.zeros(self.n_homes)

    def last_pv_w(self) -> np.ndarray:
        """PV generation (W, positive) of each home in the last step; already netted out of step()'s P."""
        return self._last_pv_j / self.step_s

    def run(self, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Convenience: n_steps steps stacked as (n_steps, n_homes) P and Q arrays."""
        p = np.empty((n_steps, self.n_homes))
        q = np.empty((n_steps, self.n_homes))
        for i in range(n_steps):
            p[i], q[i] = self.step()
        return p, q

    # demand response -------------------------------------------------------------------------------
    def curtail(self, mask: np.ndarray, limit_w: float | np.ndarray) -> None:
        """Cap flexible load (water heater, wet appliances) of masked homes at limit_w W."""
        self.flex.curtail(mask, limit_w)

    def release(self, mask: np.ndarray, rebound_w: float | np.ndarray = 2000.0) -> None:
        """Lift curtailment; deferred energy rebounds at up to rebound_w W per home (0 drops it)."""
        self.flex.release(mask, rebound_w)

    @property
    def energy_not_served_wh(self) -> np.ndarray:
        """Cumulative energy cut by curtailment per home (Wh)."""
        return self.flex.not_served_j / 3600.0

    def last_flexible_w(self) -> np.ndarray:
        """Flexible load (water heater, wet appliances, EV) of each home in the last step, before curtailment."""
        assert self._last_e is not None, "call step() first"
        return self._ledger.energies("flex", self.step_s)[0][self._last_i] / self.step_s

    @staticmethod
    def flexible_classes() -> list[str]:
        """Appliance classes that curtail() caps and release() lets rebound."""
        return [c.name for c in ACTIVITY_CLASSES if c.flexible]
