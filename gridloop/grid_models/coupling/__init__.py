"""MV/LV coupling: split an MV+LV net at its substations and solve the parts as HELICS federates.

``split`` cuts the net; ``federates`` holds the MV and LV federate loops; ``federation`` starts a loopback
HELICS broker and one process per federate (entry point ``python -m gridloop.grid_models.coupling``).
``grid.coupling: helics`` runs it inside ``gridloop run --workers N``: ``lv_solver`` is a partition's grid stage
solver (an LV federate), ``scenario_federates`` the scenario's MV federate and the run's broker.
"""

from gridloop.grid_models.coupling.split import LvSubstation, MvLvSplit, split_at_substations

__all__ = ["LvSubstation", "MvLvSplit", "split_at_substations"]
