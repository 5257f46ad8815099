"""Per-step cost of the utility meter stage (heat, water, gas demand from temperature and occupancy + meters)
against the same meters stepped with a fixed demand, measured in the same run (best of 4 each).

Run: PYTHONPATH=$PWD .venv/bin/python benchmarks/utility_stage.py
"""

from __future__ import annotations

import time
from datetime import datetime

import numpy as np

from gridloop.profiles.utility_demand import UtilityMeterStage
from gridloop.scenario.model import UtilityMeters
from gridloop.stage import Clock

START = datetime.fromisoformat("2026-01-20T00:00:00+01:00")


def stage_us(u: UtilityMeters, period_s: int, steps: int) -> float:
    st = UtilityMeterStage(u, 3, START, period_s * 1000)
    t = time.perf_counter()
    for k in range(steps):
        st.step(Clock(k * period_s * 1000, period_s * 1000), {})
    return (time.perf_counter() - t) / steps * 1e6


def meters_only_us(u: UtilityMeters, period_s: int, steps: int) -> float:
    st = UtilityMeterStage(u, 3, START, period_s * 1000)
    heat, gas = np.full(u.heat_meters, 30_000.0), np.full(u.gas_meters, 2_000.0)
    t = time.perf_counter()
    for _ in range(steps):
        st.heat.step(period_s, heat)
        st.water.step(period_s, activity=1.0)
        st.gas.step(period_s, gas)
    return (time.perf_counter() - t) / steps * 1e6


def main() -> None:
    print("| meters | step | steps | stage us/step | meters alone us/step | ratio |")
    print("|---|---|---|---|---|---|")
    for n_water, period_s, steps in ((20, 1, 7200), (20, 60, 2880), (500, 10, 8640)):
        u = UtilityMeters(heat_meters=7, water_meters=n_water, gas_meters=5)
        full = min(stage_us(u, period_s, steps) for _ in range(4))
        ref = min(meters_only_us(u, period_s, steps) for _ in range(4))
        print(f"| 7 heat, {n_water} water, 5 gas | {period_s} s | {steps} | {full:.0f} | {ref:.0f} "
              f"| {full / ref:.2f} |")


if __name__ == "__main__":
    main()
