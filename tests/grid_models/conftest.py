"""Shared, session-cached networks for the grid-model tests."""

from __future__ import annotations

import copy
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pandapower as pp
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run from anywhere without installing gridloop
    sys.path.insert(0, str(ROOT))

from gridloop.grid_models.networks import load_network  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)

_CACHE: dict[str, pp.pandapowerNet] = {}


@pytest.fixture(scope="session")
def get_net() -> Callable[[str], pp.pandapowerNet]:
    """Return a fresh deep copy of a named network, loading each name once per session."""

    def _get(name: str) -> pp.pandapowerNet:
        if name not in _CACHE:
            _CACHE[name] = load_network(name)
        return copy.deepcopy(_CACHE[name])

    return _get
