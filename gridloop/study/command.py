"""`gridloop study SCENARIO --sweep key=v1,v2 ...`: the command-line entry of a scalability study."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml


def add_arguments(study: argparse.ArgumentParser) -> None:
    """The study subcommand's options (called by gridloop.cli)."""
    from gridloop.study.sweep import KEYS

    study.add_argument("scenario", type=Path, help="a scenario file, or a study file (study: scenario, sweep, ...)")
    study.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2",
                       help="sweep a parameter; repeat for a grid of points. Keys: " + ", ".join(KEYS))
    study.add_argument("--out", type=Path, default=Path("runs/study"), help="study directory")
    study.add_argument("--realtime", action="store_true", default=None,
                       help="pace each point so meters offer readings at their rate")
    study.add_argument("--services", action="store_true", default=None,
                       help="keep the scenario's services and events in the loop (a study of a service)")
    study.add_argument("--speed", type=float, help="with --realtime: simulated seconds per wall second")
    study.add_argument("--max-wall", type=float, help="start no new point after this many seconds (default 3600)")
    study.add_argument("--docs-img", type=Path, help="also write the plots here, named PREFIX*.png")
    study.add_argument("--docs-prefix", default="study-", metavar="PREFIX",
                       help="file name prefix of the plots --docs-img writes (default study-)")


def main(args: argparse.Namespace) -> int:
    """Expand, run, write; exit 1 on a sweep that cannot run."""
    from gridloop.study.capacity import write_capacity
    from gridloop.study.report import largest_without_loss, write_plots
    from gridloop.study.runner import run_study
    from gridloop.study.study_file import load_study
    from gridloop.study.sweep import StudyError, expand, parse_sweeps

    try:
        study = load_study(args.scenario)
        sweeps = parse_sweeps(study.sweeps)
        sweeps.update(parse_sweeps(args.sweep))  # the command line's values replace the file's for a key
        services = study.services if args.services is None else args.services
        points = expand(study.base, sweeps, study.scenario_file, services)
        rows = run_study(points, args.out, realtime=study.realtime if args.realtime is None else args.realtime,
                         speed=args.speed if args.speed is not None else study.speed,
                         max_wall_s=args.max_wall if args.max_wall is not None else study.max_wall_s)
    except (StudyError, OSError, yaml.YAMLError) as exc:
        print(f"gridloop study: {exc}", file=sys.stderr)
        return 1
    if args.docs_img:
        args.docs_img.mkdir(parents=True, exist_ok=True)
        write_plots(rows, args.docs_img, args.docs_prefix)
    write_capacity(rows, args.out)
    best = largest_without_loss(rows)
    print(f"table: {args.out / 'table.md'}")
    print("largest point without loss: " + (f"{best['point']} ({best['offered_per_s']:,.0f} readings/s offered)"
                                            if best else "none"))
    return 0
