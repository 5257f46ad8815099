"""MV/LV coupling: split an MV+LV net at its substations and solve the parts as HELICS federates.

``split`` cuts the net; ``federates`` holds the MV and LV federate loops; ``federation`` starts a loopback
HELICS broker and one process per federate.  Not wired into ``gridloop run`` yet: its entry point is
``python -m gridloop.grid_models.coupling``.
"""

from gridloop.grid_models.coupling.split import LvSubstation, MvLvSplit, split_at_substations

__all__ = ["LvSubstation", "MvLvSplit", "split_at_substations"]
