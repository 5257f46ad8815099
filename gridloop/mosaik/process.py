"""``gridloop mosaik-sim KIND HOST:PORT``: one adapter as its own process, connecting to mosaik (``cmd`` start)."""

from __future__ import annotations

import asyncio

import mosaik_api_v3

from gridloop.mosaik import SIMULATORS


def serve(kind: str, addr: str) -> int:
    """Connect the simulator ``kind`` to the mosaik instance at ``addr`` and serve it until mosaik stops."""
    host, _, port = addr.rpartition(":")
    asyncio.run(mosaik_api_v3.run_as_client(SIMULATORS[kind](), host or "127.0.0.1", int(port)))
    return 0
