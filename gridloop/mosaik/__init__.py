"""gridloop's stages as mosaik simulators (mosaik_api_v3): ``Grid``, ``HouseholdFleet`` and ``Meters``.

In a mosaik scenario: ``{"Grid": {"python": "gridloop.mosaik:Grid"}}`` (in process) or
``{"Grid": {"cmd": "gridloop mosaik-sim grid %(addr)s"}}`` (its own process). The adapters need the ``mosaik``
extra and are imported when first named, so the rest of this package (``demand_csv``) works without mosaik.
"""

from __future__ import annotations

import importlib

# adapter name → its module; also the KIND of ``gridloop mosaik-sim KIND``
ADAPTERS = {"Grid": "grid", "HouseholdFleet": "households", "Meters": "meters"}

__all__ = list(ADAPTERS)


def __getattr__(name: str) -> type:
    if name in ADAPTERS:
        return getattr(importlib.import_module(f"gridloop.mosaik.{ADAPTERS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
