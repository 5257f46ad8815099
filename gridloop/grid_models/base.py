"""The contract between the engine and a grid solver.

A solver is built once from a pandapower network, then every step receives the
loads' powers and topology changes and returns a :class:`GridState`.  Buses with no
supply (behind an open switch or an outage) are reported as de-energised with 0 V,
never as NaN, so that meters there read 0 V.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class GridState:
    """Results of one solve, indexed by position in the network's tables."""

    bus_vm_pu: np.ndarray  # (n_bus,) positive-sequence voltage magnitude, 0 where de-energised
    bus_energized: np.ndarray  # (n_bus,) bool
    line_loading_percent: np.ndarray  # (n_line,), 0 for out-of-service / de-energised lines
    trafo_loading_percent: np.ndarray  # (n_trafo,)
    load_p_mw: np.ndarray  # (n_load,) power actually served (0 where de-energised)
    # per phase, (n_bus, 3); None from balanced solvers (then all phases equal bus_vm_pu)
    bus_vm_pu_phase: np.ndarray | None = None
    # power through each transformer at its LV terminal, towards the LV grid (n_trafo,): what a substation meter reads
    trafo_p_mw: np.ndarray | None = None
    trafo_q_mvar: np.ndarray | None = None


class GridSolver(Protocol):
    """Four calls the engine makes on any solver backend (pandapower, power-grid-model)."""

    def set_loads(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> None:
        """Set every load's demand for the next solve, in the order of ``net.load``."""

    def set_sgens(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> None:
        """Set every static generator's injection (PV, wind) for the next solve, in ``net.sgen`` order."""

    def set_switch(self, switch_index: int, closed: bool) -> None:
        """Open or close a pandapower switch (row label of ``net.switch``); effective at the next solve."""

    def solve(self) -> GridState:
        """Run one power flow on the current loads and topology."""

    @property
    def bus_vn_kv(self) -> np.ndarray:
        """Nominal voltage per bus, kV."""
