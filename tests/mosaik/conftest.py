"""The mosaik environment: Python >= 3.12 with mosaik 3.7 and gridloop's dependencies, made by scripts/test.sh.

As in tests/conftest.py: with GRIDLOOP_REQUIRE_SERVICES=1 (CI) a missing environment fails, else it skips.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REQUIRED = os.environ.get("GRIDLOOP_REQUIRE_SERVICES") in ("1", "true")


@pytest.fixture(scope="session")
def mosaik_python() -> str:
    """The mosaik environment's interpreter ($GRIDLOOP_MOSAIK_PYTHON, exported by scripts/test.sh)."""
    path = os.environ.get("GRIDLOOP_MOSAIK_PYTHON")
    if not path or not Path(path).is_file():
        what = "the mosaik environment (Python >= 3.12 with mosaik 3.7; $GRIDLOOP_MOSAIK_PYTHON)"
        if REQUIRED:
            pytest.fail(f"{what} is required (GRIDLOOP_REQUIRE_SERVICES=1) but not available")
        pytest.skip(f"{what} not available; run scripts/test.sh to provision it")
    return path
