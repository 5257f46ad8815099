"""Pick a GridSolver backend by name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from gridloop.grid_models.base import GridSolver
from gridloop.grid_models.pgm_solver import PgmSolver

if TYPE_CHECKING:
    import pandapower as pp

Backend = Literal["pgm", "pandapower"]


def make_solver(net: pp.pandapowerNet, backend: Backend = "pgm", per_phase: bool = False) -> GridSolver:
    """Build a solver for ``net``: power-grid-model (fast, default) or pandapower (reference).

    ``per_phase=True`` gives an unbalanced solver with ``set_loads_phase`` and per-phase voltages;
    the net then needs zero-sequence data (see ``zero_sequence.add_zero_sequence_defaults``).
    """
    if backend == "pgm":
        return PgmSolver(net, symmetric=not per_phase)
    if backend == "pandapower":
        from gridloop.grid_models.pandapower_solver import PandapowerSolver  # imports pandapower (~2 s)

        return PandapowerSolver(net, per_phase=per_phase)
    raise ValueError(f"unknown backend {backend!r}; choose 'pgm' or 'pandapower'")
