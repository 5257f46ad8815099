"""gridloop's stages as mosaik simulators (mosaik_api_v3): ``Grid``, ``HouseholdFleet`` and ``Meters``.

In a mosaik scenario: ``{"Grid": {"python": "gridloop.mosaik:Grid"}}`` (in process) or
``{"Grid": {"cmd": "gridloop mosaik-sim grid %(addr)s"}}`` (its own process). Needs the ``mosaik`` extra.
"""

from gridloop.mosaik.grid import Grid
from gridloop.mosaik.households import HouseholdFleet
from gridloop.mosaik.meters import Meters

SIMULATORS = {"grid": Grid, "households": HouseholdFleet, "meters": Meters}

__all__ = ["SIMULATORS", "Grid", "HouseholdFleet", "Meters"]
