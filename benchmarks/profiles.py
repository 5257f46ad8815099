"""Benchmark of gridloop.profiles: 10,000 homes x 1 day at 1 s, and household-years at 1 min vs richardsonpy.

Run: .venv/bin/python benchmarks/profiles.py [--homes-1s 10000] [--homes-1min 1000] [--days-1min 365]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from gridloop.profiles import HouseholdFleet, HouseholdParams

START = pd.Timestamp("2026-01-15T00:00", tz="Europe/Stockholm")


def _timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def fleet_run(
    n_homes: int, step_s: int, seconds: int, start: pd.Timestamp = START, phases: bool = False
) -> tuple[float, float, float]:
    """Construct a fleet and step it through `seconds` (optionally reading last_phase()); (wall, cpu, mean W)."""

    def go() -> float:
        fleet = HouseholdFleet(n_homes=n_homes, start=start, step_s=step_s, seed=7, params=HouseholdParams())
        total = np.zeros(n_homes)
        for _ in range(seconds // step_s):
            p, _ = fleet.step()
            if phases:
                fleet.last_phase()
            total += p
        return float(total.mean() / (seconds // step_s))

    mean_w, wall, cpu = _timed(go)
    return wall, cpu, mean_w


def richardsonpy_year() -> tuple[float, float, float]:
    """One richardsonpy household-year at 1 min (3 occupants, its bundled TRY weather)."""
    import richardsonpy.classes.electric_load as eload
    import richardsonpy.classes.occupancy as occ
    import richardsonpy.functions.change_resolution as cr
    import richardsonpy.functions.load_radiation as loadrad

    def go() -> float:
        occupancy = occ.Occupancy(number_occupants=3)
        q_direct, q_diffuse = loadrad.get_rad_from_try_path()
        q_direct = cr.change_resolution(q_direct, old_res=3600, new_res=60)
        q_diffuse = cr.change_resolution(q_diffuse, old_res=3600, new_res=60)
        load = eload.ElectricLoad(occ_profile=occupancy.occupancy, total_nb_occ=3, q_direct=q_direct,
                                  q_diffuse=q_diffuse, timestep=60)
        return float(np.mean(load.loadcurve))

    mean_w, wall, cpu = _timed(go)
    return wall, cpu, mean_w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--homes-1s", type=int, default=10_000)
    ap.add_argument("--hours-1s", type=float, default=24.0)
    ap.add_argument("--homes-1min", type=int, default=1000)
    ap.add_argument("--days-1min", type=int, default=365)
    ap.add_argument("--single-home-days", type=int, default=30)
    ap.add_argument("--skip-richardsonpy", action="store_true")
    a = ap.parse_args()

    secs = int(a.hours_1s * 3600)
    wall, cpu, mean_w = fleet_run(a.homes_1s, 1, secs)
    scale = 24.0 / a.hours_1s
    print(f"[1 s]   {a.homes_1s} homes x {a.hours_1s:g} h at 1 s: wall {wall:.1f} s, CPU {cpu:.1f} s "
          f"(per simulated day: wall {wall * scale:.1f} s, target <= 60 s); mean {mean_w:.0f} W/home; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    wall, cpu, _ = fleet_run(a.homes_1s, 1, secs, phases=True)
    print(f"[1 s]   same, also reading last_phase() (n x 3 P and Q) every step: wall {wall:.1f} s, CPU {cpu:.1f} s "
          f"(per simulated day: wall {wall * scale:.1f} s)")

    wall, cpu, mean_w = fleet_run(a.homes_1min, 60, a.days_1min * 86400, pd.Timestamp("2026-01-01"))
    hh_years = a.homes_1min * a.days_1min / 365.0
    ours_cpu = cpu / hh_years
    print(f"[1 min] {a.homes_1min} homes x {a.days_1min} days at 1 min: wall {wall:.1f} s, CPU {cpu:.1f} s "
          f"-> {ours_cpu * 1000:.1f} ms CPU per household-year; mean {mean_w:.0f} W/home "
          f"({mean_w * 8.766:.0f} kWh/yr)")

    _wall1, cpu1, _ = fleet_run(1, 60, a.single_home_days * 86400, pd.Timestamp("2026-01-01"))
    single_cpu = cpu1 * 365.0 / a.single_home_days
    print(f"[1 min] a fleet of ONE home, {a.single_home_days} days: CPU {cpu1:.2f} s -> {single_cpu:.2f} s "
          f"per household-year (no vectorisation to amortise the per-step overhead)")

    if a.skip_richardsonpy:
        return
    rwall, rcpu, rmean = richardsonpy_year()
    print(f"[richardsonpy] 1 household-year at 1 min: wall {rwall:.1f} s, CPU {rcpu:.1f} s; "
          f"mean {rmean:.0f} W ({rmean * 8.766:.0f} kWh/yr)")
    print(f"[ratio] richardsonpy / gridloop.profiles per household-year (CPU): {rcpu / ours_cpu:.0f}x "
          f"(fleet of {a.homes_1min}); {rcpu / single_cpu:.1f}x (fleet of one home)")


if __name__ == "__main__":
    main()
