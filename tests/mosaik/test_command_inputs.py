"""Commands as mosaik inputs: a switch opened through gridloop's Grid, curtailment through HouseholdFleet."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from gridloop.mosaik.demand_csv import demand_series

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCENARIO = ROOT / "examples" / "mosaik" / "dorfnetz.yaml"
OPEN_AT_S, CURTAIL_FROM_S, CURTAILED, STEPS = 600, 300, 10, 180  # as in command_inputs.py


def test_switch_and_curtailment_inputs(mosaik_python, tmp_path):
    out = tmp_path / "collected.csv"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE), str(ROOT / "examples" / "mosaik")])}
    proc = subprocess.run([mosaik_python, str(HERE / "command_inputs.py"), str(SCENARIO), str(out)], env=env,
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    frame = pd.read_csv(out, index_col="time", float_precision="round_trip")
    assert list(frame.index) == [60 * k for k in range(STEPS)]
    energized = frame[[c for c in frame.columns if c.endswith(".energized")]].astype(str) == "True"
    before, after = frame.index < OPEN_AT_S, frame.index >= OPEN_AT_S
    assert energized[before].all().all()
    cut = ~energized[after].all()  # the buses behind switch S2
    assert 0 < cut.sum() < len(cut) and not energized[after].loc[:, cut].any().any()
    vm = frame[[c.replace(".energized", ".vm_pu") for c in energized.columns[cut]]].astype(float)
    assert (vm[after] == 0).all().all() and (vm[before] > 0.9).all().all()

    labels, p, _ = demand_series(SCENARIO, STEPS)  # the homes without any curtailment
    homes = [c for c in frame.columns if c.endswith(".p_mw")]
    home_load = np.array([int(c.split(".")[1].removeprefix("Home-")) for c in homes])  # Home-<load label>
    got = np.column_stack([frame[c].astype(float) for c in homes])
    free = p[:, [labels.index(x) for x in home_load]]
    curtailed = np.isin(home_load, np.sort(home_load)[:CURTAILED])  # the first ten created, in the net's load order
    assert np.array_equal(got[:, ~curtailed], free[:, ~curtailed])  # the others exactly as without commands
    early = frame.index < CURTAIL_FROM_S
    assert np.array_equal(got[early], free[early])
    flexible = np.column_stack([frame[c.replace(".p_mw", ".flexible_w")].astype(float) for c in homes])
    assert flexible[~early][:, curtailed].sum() > 0  # the curtailed homes had flexible load to cap
    assert (got[~early][:, curtailed] <= free[~early][:, curtailed] + 1e-12).all()
    assert got[~early][:, curtailed].sum() < free[~early][:, curtailed].sum() * 0.999
