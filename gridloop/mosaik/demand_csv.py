"""A scenario's demand as a mosaik-csv file: every load's P and Q per step, as ``gridloop run`` would feed its grid.

Replaying the file in mosaik (mosaik-csv's ``CSV`` simulator, or any other) puts exactly gridloop's loads on a
mosaik grid: the same net, seed and homes give the same power flow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gridloop.grid_models.networks import grid_network
from gridloop.mosaik.common import scenario_of
from gridloop.profiles.demand import build_demand
from gridloop.scenario.model import Scenario
from gridloop.stage import ms

MODEL = "Demand"  # the entity type mosaik-csv makes from the file's first line


def csv_start(s: Scenario) -> str:
    """The scenario's start as the naive local time mosaik-csv's ``sim_start`` and the rows use."""
    return pd.Timestamp(s.clock.start).strftime("%Y-%m-%d %H:%M:%S")


def demand_series(scenario: str | Path | Scenario, steps: int) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Every load's P (MW) and Q (Mvar) for ``steps`` steps, (steps, loads), with the loads' labels in the net."""
    s = scenario_of(scenario)
    net = grid_network(s.grid, s.seed)
    step_ms = ms(s.clock.step)
    demand = build_demand(net, s.households, s.clock.start, step_ms, s.seed)
    p, q = np.empty((steps, len(net.load))), np.empty((steps, len(net.load)))
    for k in range(steps):
        p[k], q[k] = demand.at(k * step_ms / 1000)
    return [int(x) for x in net.load.index], p, q


def write_demand_csv(scenario: str | Path | Scenario, steps: int, path: str | Path) -> list[int]:
    """Write ``steps`` steps of every load's ``P_<load>`` (MW) and ``Q_<load>`` (Mvar); returns the load labels."""
    s = scenario_of(scenario)
    labels, p, q = demand_series(s, steps)
    times = pd.date_range(csv_start(s), periods=steps, freq=pd.Timedelta(milliseconds=ms(s.clock.step)))
    with Path(path).open("w") as fh:
        fh.write(MODEL + "\n")
        fh.write(",".join(["Date", *(f"P_{x}" for x in labels), *(f"Q_{x}" for x in labels)]) + "\n")
        for k, when in enumerate(times):
            fh.write(",".join([when.strftime("%Y-%m-%d %H:%M:%S"), *map(repr, p[k].tolist()),
                               *map(repr, q[k].tolist())]) + "\n")
    return labels
