"""Dead-band on-load tap-changer control of transformers' LV busbars, one tap step per call.

Works with any solver that has ``set_tap(trafo_index, position)`` (PgmSolver, PandapowerSolver).
The dead band should exceed half a tap step (2.5 % steps: > 0.0125 pu) or the controller hunts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from gridloop.grid_models.base import GridState

if TYPE_CHECKING:
    import pandapower as pp


class TapSolver(Protocol):
    """A solver whose transformers' tap changers can be moved."""

    def set_tap(self, trafo_index: int, position: int) -> None:
        """Move a tap changer; ValueError outside its range."""


@dataclass
class TapController:
    """Vectorised controller for several transformers; build it with :meth:`from_net`."""

    trafo_index: np.ndarray  # (n,) net.trafo labels
    lv_bus_pos: np.ndarray  # (n,) position in net.bus of each transformer's LV bus
    tap_pos: np.ndarray  # (n,) current positions (kept in step with the solver by step())
    tap_min: np.ndarray
    tap_max: np.ndarray
    raise_dir: np.ndarray  # (n,) tap change that raises the LV voltage: -1 (HV-side taps) or +1 (LV side)
    v_set_pu: np.ndarray | float = 1.0
    deadband_pu: np.ndarray | float = 0.02

    @classmethod
    def from_net(
        cls,
        net: pp.pandapowerNet,
        trafos: np.ndarray | None = None,
        *,
        v_set_pu: np.ndarray | float = 1.0,
        deadband_pu: np.ndarray | float = 0.02,
    ) -> TapController:
        """Controller for ``trafos`` (net.trafo labels; default all with a tap range) at the net's taps.

        Build it before moving taps by hand, or set ``tap_pos`` to the solver's positions.
        """
        tr = net.trafo if trafos is None else net.trafo.loc[np.asarray(trafos)]
        lo = tr.tap_min.fillna(tr.tap_pos).to_numpy(dtype=float)
        hi = tr.tap_max.fillna(tr.tap_pos).to_numpy(dtype=float)
        keep = np.ones(len(tr), dtype=bool) if trafos is not None else hi > lo
        tr = tr[keep]
        step = tr.tap_step_percent.fillna(0.0).to_numpy(dtype=float)
        hv_side = tr.tap_side.astype(str).to_numpy() == "hv"
        # a higher HV-side ratio lowers the LV voltage; the sign of the step percent flips it
        raise_dir = np.where(hv_side, -1, 1) * np.where(step < 0, -1, 1)
        return cls(
            trafo_index=tr.index.to_numpy(),
            lv_bus_pos=net.bus.index.get_indexer(tr.lv_bus.to_numpy()),
            tap_pos=tr.tap_pos.fillna(0).to_numpy(dtype=np.int64),
            tap_min=np.minimum(lo[keep], hi[keep]).astype(np.int64),
            tap_max=np.maximum(lo[keep], hi[keep]).astype(np.int64),
            raise_dir=raise_dir.astype(np.int64),
            v_set_pu=v_set_pu,
            deadband_pu=deadband_pu,
        )

    def decide(self, bus_vm_pu: np.ndarray) -> np.ndarray:
        """Tap change per transformer (-1, 0, +1) for the given bus voltages, within the tap range."""
        v = np.asarray(bus_vm_pu, dtype=float)[self.lv_bus_pos]
        low = v < self.v_set_pu - self.deadband_pu
        high = v > self.v_set_pu + self.deadband_pu
        want = low.astype(np.int64) - high.astype(np.int64)
        want = np.where(v > 0, want, 0)  # de-energised busbar: leave the tap alone
        new = np.clip(self.tap_pos + want * self.raise_dir, self.tap_min, self.tap_max)
        return new - self.tap_pos

    def step(self, state: GridState, solver: TapSolver) -> np.ndarray:
        """Decide on ``state`` and apply the moves to ``solver`` (next solve); returns the changes."""
        change = self.decide(state.bus_vm_pu)
        self.tap_pos = self.tap_pos + change
        for i in np.flatnonzero(change):  # only the transformers that move
            solver.set_tap(int(self.trafo_index[i]), int(self.tap_pos[i]))
        return change
