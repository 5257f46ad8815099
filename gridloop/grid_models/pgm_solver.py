"""power-grid-model backend: the model is built once, each step only loads and switch statuses change."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from power_grid_model import CalculationMethod, ComponentType, PowerGridModel

from gridloop.grid_models.base import GridState
from gridloop.grid_models.pgm_fastpath import make_fast_call
from gridloop.grid_models.pgm_input import build_pgm_input
from gridloop.grid_models.topology import branch_end_status

if TYPE_CHECKING:
    import pandapower as pp

_A = np.exp(2j * np.pi / 3)
SQRT3 = np.sqrt(3.0)


class PgmSolver:
    """GridSolver on power-grid-model; balanced by default, per phase with ``symmetric=False``.

    ``trafo_model='t'`` converts transformers so results match pandapower's default T model
    exactly; use ``'pi'`` to match ``pp.runpp(trafo_model='pi')``.
    """

    def __init__(
        self,
        net: pp.pandapowerNet,
        symmetric: bool = True,
        *,
        trafo_model: str = "t",
        calculation_method: CalculationMethod | str = CalculationMethod.newton_raphson,
        error_tolerance: float = 1e-10,
        max_iterations: int = 30,
        fast: bool = True,
        slack_control: bool = False,
    ) -> None:
        """``slack_control``: the sources' voltages can be set per solve (:meth:`set_slack`) and their power is read
        back (:meth:`slack_power`); an MV/LV coupling drives an LV substation's slack this way."""
        self.symmetric = symmetric
        self._input, self._layout = build_pgm_input(net, symmetric=symmetric, trafo_model=trafo_model)
        self._model = PowerGridModel(self._input, system_frequency=float(net.f_hz))
        self._vn_kv = net.bus.vn_kv.to_numpy(dtype=float).copy()
        self._method = calculation_method
        self._tol = error_tolerance
        self._max_iter = max_iterations
        lay = self._layout
        self._load_type = ComponentType.sym_load if symmetric else ComponentType.asym_load
        loads = self._input[self._load_type][: lay.load_ids.size]
        # demand per load in W/var; (n,) balanced or (n, 3) per phase.  Updated in place: the
        # fast path's update view points at these buffers.
        self._p = np.ascontiguousarray(loads["p_specified"], dtype=np.float64).copy()
        self._q = np.ascontiguousarray(loads["q_specified"], dtype=np.float64).copy()
        self._load_update = {"id": lay.load_ids, "p_specified": self._p, "q_specified": self._q}
        self._loads_dirty = False
        gens = self._input[ComponentType.sym_gen]
        self._sgen_update = {
            "id": lay.sgen_ids,
            "p_specified": np.array(gens["p_specified"], dtype=np.float64),
            "q_specified": np.array(gens["q_specified"], dtype=np.float64),
        }
        self._sgens_dirty = False
        self._closed = net.switch.closed.to_numpy(dtype=bool).copy() if len(net.switch) else np.zeros(0, dtype=bool)
        self._topology_dirty = False
        trafos = self._input[ComponentType.transformer]
        self._trafo_labels = net.trafo.index.to_numpy()
        self._tap_pos = trafos["tap_pos"].copy()
        self._tap_range = np.sort(np.column_stack([trafos["tap_min"], trafos["tap_max"]]), axis=1)
        self._taps_dirty = False
        self._source_update: dict[str, np.ndarray] | None = None
        self._source_dirty = False
        if slack_control:
            src = self._input[ComponentType.source]
            self._source_update = {"id": src["id"].copy(), "u_ref": src["u_ref"].astype(np.float64),
                                   "u_ref_angle": src["u_ref_angle"].astype(np.float64)}
        self._outputs: dict[ComponentType, list[str]] = {
            ComponentType.node: ["energized", "u_pu"] if symmetric else ["energized", "u_pu", "u_angle"],
            ComponentType.line: ["loading"],
            ComponentType.transformer: ["i_from", "i_to", "p_to", "q_to"],
        }
        if lay.line_ids.size == 0:
            del self._outputs[ComponentType.line]
        if lay.trafo_ids.size == 0:
            del self._outputs[ComponentType.transformer]
        if slack_control:
            self._outputs[ComponentType.source] = ["p", "q"]
            if symmetric:
                self._outputs[ComponentType.node].append("u_angle")
        self._last_out: dict | None = None
        self._fast = (
            make_fast_call(
                self._model,
                symmetric=symmetric,
                outputs=self._outputs,
                update=self._bound_updates(),
                error_tolerance=error_tolerance,
                max_iterations=max_iterations,
                calculation_method=calculation_method,
            )
            if fast
            else None
        )
        i_rated = lay.trafo_sn_mva[:, None] * 1e6 / (SQRT3 * lay.trafo_vn_kv * 1e3)
        self._inv_i_hv = np.ascontiguousarray(100.0 / i_rated[:, 0])  # percent per ampere
        self._inv_i_lv = np.ascontiguousarray(100.0 / i_rated[:, 1])

    # -- GridSolver protocol ------------------------------------------------------------------
    @property
    def bus_vn_kv(self) -> np.ndarray:
        """Nominal voltage per bus, kV."""
        return self._vn_kv

    def set_loads(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> None:
        """Balanced demand per load (MW, Mvar) in net.load order; split equally over phases if per phase."""
        scale = self._layout.load_scaling * 1e6
        p = np.asarray(p_mw, dtype=np.float64) * scale
        q = np.asarray(q_mvar, dtype=np.float64) * scale
        if self.symmetric:
            self._p[:] = p
            self._q[:] = q
        else:
            self._p[:] = p[:, None] / 3.0
            self._q[:] = q[:, None] / 3.0
        self._loads_dirty = True

    def set_loads_phase(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> None:
        """Per-phase demand, arrays of shape (n_load, 3) in MW / Mvar (per-phase solver only)."""
        if self.symmetric:
            raise ValueError("set_loads_phase needs PgmSolver(net, symmetric=False)")
        scale = self._layout.load_scaling[:, None] * 1e6
        np.multiply(np.asarray(p_mw, dtype=np.float64).reshape(-1, 3), scale, out=self._p)
        np.multiply(np.asarray(q_mvar, dtype=np.float64).reshape(-1, 3), scale, out=self._q)
        self._loads_dirty = True

    def set_sgens(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> None:
        """Static generator injections (MW, Mvar) in net.sgen order."""
        scale = self._layout.sgen_scaling * 1e6
        np.multiply(np.asarray(p_mw, dtype=np.float64), scale, out=self._sgen_update["p_specified"])
        np.multiply(np.asarray(q_mvar, dtype=np.float64), scale, out=self._sgen_update["q_specified"])
        self._sgens_dirty = True

    def set_switch(self, switch_index: int, closed: bool) -> None:
        """Open/close a pandapower switch by its net.switch label; applied at the next solve."""
        pos = self._layout.switches.position(switch_index)
        if self._closed[pos] != bool(closed):
            self._closed[pos] = bool(closed)
            self._topology_dirty = True

    def set_tap(self, trafo_index: int, position: int) -> None:
        """Move a transformer's tap changer (net.trafo label) to ``position``; applied at the next solve.

        Raises ValueError outside [tap_min, tap_max] (a transformer without a ratio tap changer
        only allows its current position).
        """
        pos = np.flatnonzero(self._trafo_labels == trafo_index)
        if pos.size == 0:
            raise KeyError(f"no transformer with index {trafo_index}")
        lo, hi = (int(v) for v in self._tap_range[pos[0]])
        if not lo <= position <= hi or int(position) != position:
            raise ValueError(f"tap position {position} of transformer {trafo_index} outside allowed range [{lo}, {hi}]")
        if self._tap_pos[pos[0]] != position:
            self._tap_pos[pos[0]] = int(position)
            self._taps_dirty = True

    def set_slack(self, vm_pu: float, va_rad: float) -> None:
        """Voltage of every source (pu, rad) for the next solve (``slack_control`` solvers only)."""
        self._source_update["u_ref"][:] = vm_pu
        self._source_update["u_ref_angle"][:] = va_rad
        self._source_dirty = True

    def slack_power(self) -> complex:
        """P + jQ (MW, Mvar) the sources fed in the last solve (``slack_control`` solvers only)."""
        src = self._last_out[ComponentType.source]
        return complex(float(np.sum(src["p"])) / 1e6, float(np.sum(src["q"])) / 1e6)

    def bus_voltage(self) -> np.ndarray:
        """Complex positive-sequence voltage per bus (pu) of the last solve (``slack_control``, balanced)."""
        node = self._last_out[ComponentType.node]
        return node["u_pu"] * np.exp(1j * node["u_angle"])

    def tap_position(self, trafo_index: int) -> int:
        """Current (pending) tap position of a transformer."""
        return int(self._tap_pos[np.flatnonzero(self._trafo_labels == trafo_index)[0]])

    def solve(self) -> GridState:
        """Push pending updates into the model and run one power flow."""
        if self._fast is not None and (self._loads_dirty or self._sgens_dirty or self._source_dirty):
            self._fast.push_update()
            self._loads_dirty = self._sgens_dirty = self._source_dirty = False
        if self._loads_dirty or self._sgens_dirty or self._topology_dirty or self._taps_dirty or self._source_dirty:
            self._model.update(update_data=self._pending_update())
        if self._fast is not None:
            self._last_out = self._fast.run()
            return self._to_state(self._last_out)
        out = self._last_out = self._model.calculate_power_flow(
            symmetric=self.symmetric,
            error_tolerance=self._tol,
            max_iterations=self._max_iter,
            calculation_method=self._method,
            output_component_types=self._outputs,
        )
        return self._to_state(out)

    def solve_batch(self, p_mw: np.ndarray, q_mvar: np.ndarray, *, threading: int = -1) -> dict[str, np.ndarray]:
        """Solve T steps in one power-grid-model batch on the current topology (no feedback between steps).

        ``p_mw``/``q_mvar`` are (T, n_load) balanced or (T, n_load, 3) per phase.  Returns arrays with a
        leading time axis: bus_vm_pu (T, n_bus), bus_energized, line_loading_percent, trafo_loading_percent,
        and bus_vm_pu_phase (T, n_bus, 3) when per phase.  The model keeps its pre-batch state.
        """
        lay = self._layout
        if self._topology_dirty or self._sgens_dirty or self._taps_dirty:
            self._model.update(update_data=self._pending_update())
        p = np.asarray(p_mw, dtype=np.float64)
        q = np.asarray(q_mvar, dtype=np.float64)
        scale = lay.load_scaling * 1e6
        if not self.symmetric and p.ndim == 2:  # balanced input to a per-phase solver
            p = np.repeat(p[:, :, None] / 3.0, 3, axis=2)
            q = np.repeat(q[:, :, None] / 3.0, 3, axis=2)
        if not self.symmetric:
            scale = scale[:, None]
        steps = p.shape[0]
        update = {
            self._load_type: {
                "id": np.broadcast_to(lay.load_ids, (steps, lay.load_ids.size)),
                "p_specified": p * scale,
                "q_specified": q * scale,
            }
        }
        out = self._model.calculate_power_flow(
            symmetric=self.symmetric,
            error_tolerance=self._tol,
            max_iterations=self._max_iter,
            calculation_method=self._method,
            update_data=update,
            threading=threading,
            output_component_types=self._outputs,
        )
        node = out[ComponentType.node]
        energized = node["energized"].astype(bool)
        result = {"bus_energized": energized}
        if self.symmetric:
            result["bus_vm_pu"] = np.where(energized, node["u_pu"], 0.0)
        else:
            u = node["u_pu"] * np.exp(1j * node["u_angle"])
            v1 = np.abs((u[..., 0] + _A * u[..., 1] + _A * _A * u[..., 2]) / 3.0)
            result["bus_vm_pu"] = np.where(energized, v1, 0.0)
            result["bus_vm_pu_phase"] = np.where(energized[..., None], node["u_pu"], 0.0)
        result["line_loading_percent"] = (
            np.fmax(out[ComponentType.line]["loading"] * 100.0, 0.0) if lay.line_ids.size else np.zeros((steps, 0))
        )
        if lay.trafo_ids.size:
            tr = out[ComponentType.transformer]
            i_from, i_to = tr["i_from"], tr["i_to"]
            if not self.symmetric:
                i_from, i_to = i_from.max(axis=-1), i_to.max(axis=-1)
            result["trafo_loading_percent"] = np.fmax(np.fmax(i_from * self._inv_i_hv, i_to * self._inv_i_lv), 0.0)
        else:
            result["trafo_loading_percent"] = np.zeros((steps, 0))
        return result

    # -- internals ------------------------------------------------------------------------------
    def _bound_updates(self) -> dict[ComponentType, dict[str, np.ndarray]]:
        """Per-step update arrays the fast path binds once (loads, and sgens if any)."""
        bound = {self._load_type: self._load_update}
        if self._layout.sgen_ids.size:
            bound[ComponentType.sym_gen] = self._sgen_update
        if self._source_update is not None:
            bound[ComponentType.source] = self._source_update
        return bound

    def _pending_update(self) -> dict[ComponentType, dict[str, np.ndarray]]:
        lay = self._layout
        update: dict[ComponentType, dict[str, np.ndarray]] = {}
        if self._loads_dirty:
            update[self._load_type] = self._load_update
            self._loads_dirty = False
        if self._sgens_dirty:
            update[ComponentType.sym_gen] = self._sgen_update
            self._sgens_dirty = False
        if self._source_dirty:
            update[ComponentType.source] = self._source_update
            self._source_dirty = False
        if self._topology_dirty:
            # clear first and work on a snapshot: a set_switch from another thread meanwhile is kept
            self._topology_dirty = False
            closed = self._closed.copy()
            smap = lay.switches
            if lay.line_ids.size:
                f, t = branch_end_status(smap, closed, 0, lay.line_in_service)
                update[ComponentType.line] = {"id": lay.line_ids, "from_status": f, "to_status": t}
            if lay.trafo_ids.size:
                f, t = branch_end_status(smap, closed, 1, lay.trafo_in_service)
                update[ComponentType.transformer] = {"id": lay.trafo_ids, "from_status": f, "to_status": t}
            if lay.link_ids.size:
                s = closed[smap.kind == 2].astype(np.int8)
                update[ComponentType.link] = {"id": lay.link_ids, "from_status": s, "to_status": s}
        if self._taps_dirty:
            self._taps_dirty = False
            tr = update.setdefault(ComponentType.transformer, {"id": lay.trafo_ids})
            tr["tap_pos"] = self._tap_pos.copy()
        return update

    def _to_state(self, out: dict) -> GridState:
        lay = self._layout
        node = out[ComponentType.node]
        energized = node["energized"].astype(bool)
        if self.symmetric:
            vm = np.where(energized, node["u_pu"], 0.0)
            vm_phase = None
            p_load = self._p
        else:
            u = node["u_pu"] * np.exp(1j * node["u_angle"])
            vm = np.where(energized, np.abs((u[:, 0] + _A * u[:, 1] + _A * _A * u[:, 2]) / 3.0), 0.0)
            vm_phase = np.where(energized[:, None], node["u_pu"], 0.0)
            p_load = self._p.sum(axis=1)
        served = lay.load_in_service & energized[lay.load_bus_pos]
        # np.fmax maps NaN to 0 (loadings are >= 0) and is far cheaper than np.nan_to_num
        line_loading = np.fmax(out[ComponentType.line]["loading"] * 100.0, 0.0) if lay.line_ids.size else np.zeros(0)
        if lay.trafo_ids.size:
            tr = out[ComponentType.transformer]
            i_from, i_to = tr["i_from"], tr["i_to"]
            if not self.symmetric:
                i_from, i_to = i_from.max(axis=1), i_to.max(axis=1)
            trafo_loading = np.fmax(np.fmax(i_from * self._inv_i_hv, i_to * self._inv_i_lv), 0.0)
            p_to, q_to = tr["p_to"], tr["q_to"]
            if not self.symmetric:
                p_to, q_to = p_to.sum(axis=1), q_to.sum(axis=1)
            # PGM reports power flowing into the transformer at its LV ("to") side: the grid gets the opposite
            trafo_p, trafo_q = -np.nan_to_num(p_to) / 1e6, -np.nan_to_num(q_to) / 1e6
        else:
            trafo_loading = trafo_p = trafo_q = np.zeros(0)
        return GridState(
            bus_vm_pu=vm,
            bus_energized=energized,
            line_loading_percent=line_loading,
            trafo_loading_percent=trafo_loading,
            load_p_mw=np.where(served, p_load / 1e6, 0.0),
            bus_vm_pu_phase=vm_phase,
            trafo_p_mw=trafo_p,
            trafo_q_mvar=trafo_q,
        )
