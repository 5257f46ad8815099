"""``python -m gridloop.grid_models.coupling``: run the MV/LV federation and compare it with one whole-net solve."""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from gridloop.grid_models.coupling.federates import CouplingCase
from gridloop.grid_models.coupling.federation import run_coupled, solve_whole


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--substations", type=int, default=4)
    ap.add_argument("--feeders", type=int, default=2)
    ap.add_argument("--homes", type=int, default=5, help="homes per feeder")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--sweeps", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--partitions", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    case = CouplingCase(args.substations, args.feeders, args.homes, args.seed, args.steps, sweeps=args.sweeps)
    reference, solve_s = solve_whole(case)
    whole = float(np.median(solve_s))
    print(f"whole-net solve (one process): {whole * 1e3:.1f} ms/step (median of {case.n_steps})")
    for n in args.partitions:
        run = run_coupled(case, n)
        err = max(float(np.abs(v - reference[b]).max()) for b, v in run.lv_vm_pu().items())
        step = float(np.median(run.mv.step_s[1:] or run.mv.step_s))
        print(
            f"{n} LV partition(s) + MV federate: {step * 1e3:.1f} ms/step ({step / whole:.1f}x whole-net solve), "
            f"wall {run.wall_s:.1f} s incl. process start, max |dV| vs whole net {err:.1e} pu"
        )


if __name__ == "__main__":
    main()
