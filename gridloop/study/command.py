"""`gridloop study SCENARIO --sweep key=v1,v2 ...`: the command-line entry of a scalability study."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml


def add_arguments(study: argparse.ArgumentParser) -> None:
    """The study subcommand's options (called by gridloop.cli)."""
    from gridloop.study.sweep import KEYS

    study.add_argument("scenario", type=Path)
    study.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2",
                       help="sweep a parameter; repeat for a grid of points. Keys: " + ", ".join(KEYS))
    study.add_argument("--out", type=Path, default=Path("runs/study"), help="study directory")
    study.add_argument("--realtime", action="store_true", help="pace each point so meters offer readings at their rate")
    study.add_argument("--speed", type=float, help="with --realtime: simulated seconds per wall second")
    study.add_argument("--max-wall", type=float, default=3600.0, help="start no new point after this many seconds")
    study.add_argument("--docs-img", type=Path, help="also write the plots here, named PREFIX*.png")
    study.add_argument("--docs-prefix", default="study-", metavar="PREFIX",
                       help="file name prefix of the plots --docs-img writes (default study-)")


def main(args: argparse.Namespace) -> int:
    """Expand, run, write; exit 1 on a sweep that cannot run."""
    from gridloop.study.capacity import write_capacity
    from gridloop.study.report import largest_without_loss, write_plots
    from gridloop.study.runner import run_study
    from gridloop.study.sweep import StudyError, expand, parse_sweeps

    try:
        base = yaml.safe_load(args.scenario.read_text(encoding="utf-8"))
        points = expand(base, parse_sweeps(args.sweep), str(args.scenario))
        rows = run_study(points, args.out, realtime=args.realtime, speed=args.speed, max_wall_s=args.max_wall)
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
