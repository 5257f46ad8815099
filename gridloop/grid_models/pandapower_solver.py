"""pandapower backend: reference solver, using recycled runpp internals while topology is unchanged."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandapower as pp

from gridloop.grid_models.base import GridState

_A = np.exp(2j * np.pi / 3)
_RECYCLE = {"bus_pq": True, "trafo": False, "gen": False}


class PandapowerSolver:
    """GridSolver on ``pp.runpp`` (balanced) or ``pp.runpp_3ph`` (``per_phase=True``).

    Works on a private deep copy of ``net``.  Balanced steps reuse the admittance matrices
    (``recycle``) and start from the last results; a switch change forces a full rebuild.
    """

    def __init__(
        self,
        net: pp.pandapowerNet,
        *,
        per_phase: bool = False,
        trafo_model: str = "t",
        recycle: bool = True,
        tolerance_mva: float = 1e-8,
    ) -> None:
        self.net = copy.deepcopy(net)
        self.per_phase = per_phase
        self._trafo_model = trafo_model
        self._recycle = recycle and not per_phase
        self._tol = tolerance_mva
        self._fresh = False  # True once internals of the current topology are stored in the net
        ld = self.net.load
        self._load_bus_pos = self.net.bus.index.get_indexer(ld.bus.to_numpy())
        self._load_scaling = ld.scaling.to_numpy(dtype=float)
        self._load_in_service = ld.in_service.to_numpy(dtype=bool)
        self._vn_kv = self.net.bus.vn_kv.to_numpy(dtype=float).copy()
        if per_phase:
            self._mirror_loads_as_asymmetric()

    def _mirror_loads_as_asymmetric(self) -> None:
        """Represent every load by an asymmetric_load (same order) so phases can be set separately."""
        ld = self.net.load
        if "asymmetric_load" in self.net and len(self.net.asymmetric_load):
            raise NotImplementedError("per-phase PandapowerSolver expects no pre-existing asymmetric_load")
        p = ld.p_mw.to_numpy(dtype=float) / 3.0
        q = ld.q_mvar.to_numpy(dtype=float) / 3.0
        idx = [
            pp.create_asymmetric_load(
                self.net,
                int(bus),
                p_a_mw=pi,
                p_b_mw=pi,
                p_c_mw=pi,
                q_a_mvar=qi,
                q_b_mvar=qi,
                q_c_mvar=qi,
                scaling=float(sc),
                in_service=bool(ok),
            )
            for bus, pi, qi, sc, ok in zip(
                ld.bus.to_numpy(), p, q, self._load_scaling, self._load_in_service, strict=True
            )
        ]  # one-off construction, not the per-step path
        self._asym_index = np.asarray(idx)
        ld["in_service"] = False
        # runpp_3ph silently skips sgens whose 'type' is not wye/delta (SimBench uses 'PV', ...):
        # mirror them as balanced wye asymmetric_sgens instead
        sg = self.net.sgen
        if "asymmetric_sgen" in self.net and len(self.net.asymmetric_sgen):
            raise NotImplementedError("per-phase PandapowerSolver expects no pre-existing asymmetric_sgen")
        self._asym_sgen_index = np.asarray(
            [
                pp.create_asymmetric_sgen(
                    self.net,
                    int(bus),
                    p_a_mw=p3,
                    p_b_mw=p3,
                    p_c_mw=p3,
                    q_a_mvar=q3,
                    q_b_mvar=q3,
                    q_c_mvar=q3,
                    scaling=float(sc),
                    in_service=bool(ok),
                    type="wye",
                )
                for bus, p3, q3, sc, ok in zip(
                    sg.bus.to_numpy(),
                    sg.p_mw.to_numpy(dtype=float) / 3,
                    sg.q_mvar.to_numpy(dtype=float) / 3,
                    sg.scaling.to_numpy(dtype=float),
                    sg.in_service.to_numpy(dtype=bool),
                    strict=True,
                )
            ],
            dtype=np.int64,
        )
        sg["in_service"] = False

    @property
    def bus_vn_kv(self) -> np.ndarray:
        """Nominal voltage per bus, kV."""
        return self._vn_kv

    def set_loads(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> None:
        """Balanced demand per load in net.load order (MW, Mvar)."""
        p = np.asarray(p_mw, dtype=float)
        q = np.asarray(q_mvar, dtype=float)
        if self.per_phase:
            self.set_loads_phase(np.repeat(p[:, None] / 3, 3, axis=1), np.repeat(q[:, None] / 3, 3, axis=1))
            return
        self.net.load["p_mw"] = p
        self.net.load["q_mvar"] = q

    def set_loads_phase(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> None:
        """Per-phase demand, (n_load, 3) MW / Mvar; only with ``per_phase=True``."""
        if not self.per_phase:
            raise ValueError("set_loads_phase needs PandapowerSolver(net, per_phase=True)")
        p = np.asarray(p_mw, dtype=float).reshape(-1, 3)
        q = np.asarray(q_mvar, dtype=float).reshape(-1, 3)
        al = self.net.asymmetric_load
        al[["p_a_mw", "p_b_mw", "p_c_mw"]] = p
        al[["q_a_mvar", "q_b_mvar", "q_c_mvar"]] = q

    def set_sgens(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> None:
        """Static generator injections (MW, Mvar) in net.sgen order, balanced over phases if per phase."""
        p = np.asarray(p_mw, dtype=float)
        q = np.asarray(q_mvar, dtype=float)
        if self.per_phase:
            asg = self.net.asymmetric_sgen
            asg.loc[self._asym_sgen_index, ["p_a_mw", "p_b_mw", "p_c_mw"]] = np.repeat(p[:, None] / 3, 3, axis=1)
            asg.loc[self._asym_sgen_index, ["q_a_mvar", "q_b_mvar", "q_c_mvar"]] = np.repeat(q[:, None] / 3, 3, axis=1)
            return
        self.net.sgen["p_mw"] = p
        self.net.sgen["q_mvar"] = q

    def set_switch(self, switch_index: int, closed: bool) -> None:
        """Open/close a switch by net.switch label; invalidates the recycled internals."""
        if bool(self.net.switch.at[switch_index, "closed"]) != bool(closed):
            self.net.switch.at[switch_index, "closed"] = bool(closed)
            self._fresh = False

    def set_tap(self, trafo_index: int, position: int) -> None:
        """Move a transformer's ratio tap changer (net.trafo label) to ``position``; applied at the next solve.

        Raises ValueError outside [tap_min, tap_max]; without a ratio tap changer only the current
        position is allowed (as in PgmSolver).
        """
        tr = self.net.trafo
        if trafo_index not in tr.index:
            raise KeyError(f"no transformer with index {trafo_index}")
        row = tr.loc[trafo_index]
        current = int(row.tap_pos) if np.isfinite(float(row.tap_pos)) else 0
        ctype = str(row.get("tap_changer_type", ""))
        step_deg = float(row.get("tap_step_degree", 0.0) or 0.0)
        if ctype in ("Ratio", "Symmetrical") and abs(step_deg) < 1e-12:
            lo, hi = sorted((int(row.tap_min), int(row.tap_max)))
        else:
            lo = hi = current
        if not lo <= position <= hi or int(position) != position:
            raise ValueError(f"tap position {position} of transformer {trafo_index} outside allowed range [{lo}, {hi}]")
        if current != position:
            tr.at[trafo_index, "tap_pos"] = int(position)
            self._fresh = False  # transformer parameters changed: rebuild the admittance matrices

    def tap_position(self, trafo_index: int) -> int:
        """Current (pending) tap position of a transformer."""
        return int(self.net.trafo.at[trafo_index, "tap_pos"])

    def solve(self) -> GridState:
        """Run one power flow and convert the result tables."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.per_phase:
                pp.runpp_3ph(self.net, numba=False, tolerance_mva=self._tol)
                return self._state_3ph()
            # runpp recycles whenever internals are stored, so a topology change must pass None
            recycle = _RECYCLE if self._recycle and self._fresh else None
            pp.runpp(
                self.net,
                numba=False,
                recycle=recycle,
                trafo_model=self._trafo_model,
                tolerance_mva=self._tol,
                init="results" if recycle else "auto",
            )
            self._fresh = self._recycle
        return self._state_balanced()

    def _served(self, energized: np.ndarray, p_total_mw: np.ndarray) -> np.ndarray:
        served = self._load_in_service & energized[self._load_bus_pos]
        return np.where(served, p_total_mw * self._load_scaling, 0.0)

    def _state_balanced(self) -> GridState:
        net = self.net
        vm = net.res_bus.vm_pu.to_numpy(dtype=float)
        energized = np.isfinite(vm)
        return GridState(
            bus_vm_pu=np.where(energized, vm, 0.0),
            bus_energized=energized,
            line_loading_percent=np.nan_to_num(net.res_line.loading_percent.to_numpy(dtype=float)),
            trafo_loading_percent=np.nan_to_num(net.res_trafo.loading_percent.to_numpy(dtype=float)),
            load_p_mw=self._served(energized, net.load.p_mw.to_numpy(dtype=float)),
            trafo_p_mw=-np.nan_to_num(net.res_trafo.p_lv_mw.to_numpy(dtype=float)),
            trafo_q_mvar=-np.nan_to_num(net.res_trafo.q_lv_mvar.to_numpy(dtype=float)),
        )

    def _state_3ph(self) -> GridState:
        net = self.net
        rb = net.res_bus_3ph
        vm = rb[["vm_a_pu", "vm_b_pu", "vm_c_pu"]].to_numpy(dtype=float)
        va = np.deg2rad(rb[["va_a_degree", "va_b_degree", "va_c_degree"]].to_numpy(dtype=float))
        energized = np.isfinite(vm).all(axis=1)
        u = np.nan_to_num(vm * np.exp(1j * va))
        v1 = np.abs((u[:, 0] + _A * u[:, 1] + _A * _A * u[:, 2]) / 3.0)
        al = net.asymmetric_load.loc[self._asym_index]
        p_total = al[["p_a_mw", "p_b_mw", "p_c_mw"]].to_numpy(dtype=float).sum(axis=1)
        return GridState(
            bus_vm_pu=np.where(energized, v1, 0.0),
            bus_energized=energized,
            line_loading_percent=np.nan_to_num(net.res_line_3ph.loading_percent.to_numpy(dtype=float)),
            trafo_loading_percent=np.nan_to_num(net.res_trafo_3ph.loading_percent.to_numpy(dtype=float)),
            load_p_mw=self._served(energized, p_total),
            bus_vm_pu_phase=np.where(energized[:, None], vm, 0.0),
            trafo_p_mw=-np.nan_to_num(net.res_trafo_3ph[["p_a_lv_mw", "p_b_lv_mw", "p_c_lv_mw"]].to_numpy(
                dtype=float)).sum(axis=1),
            trafo_q_mvar=-np.nan_to_num(net.res_trafo_3ph[["q_a_lv_mvar", "q_b_lv_mvar", "q_c_lv_mvar"]].to_numpy(
                dtype=float)).sum(axis=1),
        )
