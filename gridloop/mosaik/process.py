"""``gridloop mosaik-sim KIND HOST:PORT``: one adapter as its own process, connecting to mosaik (``cmd`` start)."""

from __future__ import annotations

import asyncio
import importlib

import mosaik_api_v3

from gridloop.mosaik import ADAPTERS

KINDS = {kind: name for name, kind in ADAPTERS.items()}  # grid → Grid, households → HouseholdFleet, ...


def serve(kind: str, addr: str) -> int:
    """Connect the simulator ``kind`` to the mosaik instance at ``addr`` and serve it until mosaik stops."""
    module = importlib.import_module(f"gridloop.mosaik.{kind}")
    simulator = getattr(module, KINDS[kind])()
    host, _, port = addr.rpartition(":")
    asyncio.run(mosaik_api_v3.run_as_client(simulator, host or "127.0.0.1", int(port)))
    return 0
