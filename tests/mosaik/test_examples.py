"""The mosaik examples under real mosaik 3.7 (Python 3.12, a subprocess) agree with `gridloop run`.

Same scenario, seed and loads: bus voltages equal to 1e-6 pu, step by step. The homes-and-meters example
publishes through its DIA to a real platform (over a real broker), which stores every reading, and the
readings match those `gridloop run` took at the same meters.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridloop.contract import Quantity
from gridloop.engine.run import RunOptions, run_scenario
from gridloop.grid_models.networks import load_network
from gridloop.scenario.loader import load_scenario
from gridloop.sdk import PlatformClient

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "mosaik"
SCENARIO = EXAMPLES / "dorfnetz.yaml"
STEPS = 300
HOMES = 50
TOLERANCE_PU = 1e-6
ENERGY = Quantity.ENERGY_ACTIVE_IMPORT


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """`gridloop run` of the examples' scenario for the same number of steps (its own broker and platform)."""
    out = tmp_path_factory.mktemp("gridloop-run")
    summary = run_scenario(load_scenario(SCENARIO), RunOptions(out=out, until=STEPS * 60.0, progress=False))
    assert summary.steps == STEPS
    return out


def _run_example(python: str, script: str, out: Path, *flags: str, steps: int = STEPS) -> dict:
    """Run an example with the mosaik environment's Python; its last line of output is a JSON summary."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLES)]),
           "PATH": os.pathsep.join([str(Path(python).parent), os.environ.get("PATH", "")])}
    proc = subprocess.run([python, str(EXAMPLES / script), "--steps", str(steps), "--out", str(out), *flags],
                          cwd=out, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _voltages(out: Path, steps: int) -> np.ndarray:
    """The collector's bus voltages as (steps, buses) in the net's bus order."""
    frame = pd.read_csv(out / "bus_vm_pu.csv", index_col="time")
    assert list(frame.index) == [60 * k for k in range(steps)]
    s = load_scenario(SCENARIO)
    net = load_network(s.grid.network, seed=s.seed)
    labels = [int(c.split(".")[1].removeprefix("Bus-")) for c in frame.columns]
    positions = net.bus.index.get_indexer(labels)
    assert sorted(positions) == list(range(len(net.bus)))
    vm = np.full((steps, len(net.bus)), np.nan)
    vm[:, positions] = frame.to_numpy(dtype=float)
    return vm


def _assert_same_voltages(out: Path, reference: Path, steps: int = STEPS) -> None:
    expected = pd.read_parquet(reference / "grid_bus_vm_pu.parquet").to_numpy(dtype=float)[:steps]
    got = _voltages(out, steps)
    assert got.shape == expected.shape
    assert np.ptp(expected, axis=0).max() > 1e-3  # the homes' load moves the voltages: a real comparison
    assert np.abs(got - expected).max() < TOLERANCE_PU


def test_homes_and_meters_on_gridloop_grid(mosaik_python, reference, platform, broker_uri, tmp_path):
    """gridloop's homes, meters (DIA → MQTT → platform) and grid as mosaik processes (``gridloop mosaik-sim``)."""
    s = load_scenario(SCENARIO)
    admin = PlatformClient(platform.url)
    key = admin.create_tenant(s.platform.tenant, platform.admin_key)
    result = _run_example(mosaik_python, "homes_meters_grid.py", tmp_path, "--process", "--broker", broker_uri,
                          "--api-url", platform.url, "--api-key", key)
    _assert_same_voltages(tmp_path, reference)
    due = HOMES * STEPS * 60 // 300  # a reading every 5 minutes
    assert result["readings_stored"] == result["readings_due"] == due
    api = PlatformClient(platform.url, key)
    ours = pd.read_parquet(reference / "meter_readings.parquet")
    for meter in ("m00001", "m00025", "m00050"):  # every quantity of every reading as `gridloop run` took it
        stored = api.readings(meter)
        expected = ours[ours.dev == meter].set_index("ts")
        assert [r.ts for r in stored] == expected.index.tolist() and len(stored) == STEPS // 5
        for r in stored:
            row = expected.loc[r.ts]
            assert set(r.q) == {q for q in expected.columns if q.startswith(ENERGY.split(".")[0])
                                and np.isfinite(row[q])}
            assert all(abs(v - row[q]) <= 1e-6 * max(1.0, abs(row[q])) for q, v in r.q.items())


def test_mosaik_csv_drives_gridloop_grid(mosaik_python, reference, tmp_path):
    """gridloop's demand exported as CSV, replayed by mosaik-csv into gridloop's Grid (in process)."""
    result = _run_example(mosaik_python, "csv_grid.py", tmp_path)
    assert result["loads"] == len(load_network("kerber_dorfnetz").load)
    _assert_same_voltages(tmp_path, reference)


def test_homes_and_meters_on_mosaik_pandapower_grid(mosaik_python, reference, tmp_path):
    """gridloop's homes and meters in process on mosaik-pandapower-2's grid, with the run's embedded platform."""
    steps = 200  # pandapower's Newton-Raphson takes ~30 ms a step
    result = _run_example(mosaik_python, "homes_meters_grid.py", tmp_path, "--grid", "mosaik-pandapower", steps=steps)
    _assert_same_voltages(tmp_path, reference, steps)
    assert result["readings_stored"] == result["readings_due"] == HOMES * steps * 60 // 300
