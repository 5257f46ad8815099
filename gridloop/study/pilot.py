"""Pilot findings as scenario runs: each finding's cases run end to end, their stored shares beside the pilot's.

A finding is a pilot scenario file, the cases it is run in (scenario fields changed per case) and what the pilot
said of each case and which figures it gave. ``python -m gridloop.study.pilot --out docs/img`` runs every case of
every finding and writes one plot per finding (``pilot_plot.plot_finding``) and a Markdown table of the numbers.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from gridloop.contract import RunSummary
from gridloop.scenario.model import Scenario

ROOT = Path(__file__).resolve().parents[2]
HOME_METER_PREFIX = "m"  # home meters are m00001...; substation meters (ss0...) go straight to the DIA


@dataclass(frozen=True)
class PilotLine:
    """A figure the pilot gave, as a share of the readings stored per meter."""

    share: float
    label: str


@dataclass(frozen=True)
class PilotCase:
    """One run of a finding: the scenario fields it changes and what the pilot reported for it."""

    label: str
    changes: dict[str, object]
    pilot: str


@dataclass(frozen=True)
class PilotFinding:
    name: str  # the scenario file's stem, also the plot's name
    title: str
    cases: tuple[PilotCase, ...]
    lines: tuple[PilotLine, ...]
    one_hz: bool = False  # measure the 1 Hz meters (one sample a second) instead of the interval meters


@dataclass
class CaseResult:
    case: PilotCase
    shares: dict[str, float]  # per measured meter: readings stored / readings due in the run
    lost_in_link: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return sum(self.shares.values()) / max(len(self.shares), 1)

    @property
    def low(self) -> float:
        return min(self.shares.values(), default=0.0)

    @property
    def high(self) -> float:
        return max(self.shares.values(), default=0.0)


WORKS = 0.99  # a mesh that "works" stores at least this share of every meter's readings on average
RF_MESH = PilotFinding(
    "pilot-rf-mesh", "Hyllie RF mesh, field profile (~106 meters per gateway at 3 gateways)",
    tuple(PilotCase(f"{i} s, {g} gw", {"meters.interval": float(i), "clock.step": float(i),
                                         "meters.link.gateways": g}, verdict)
          for i, g, verdict in ((5, 3, "fails"), (5, 6, "fails"), (10, 3, "fails"), (10, 6, "works, on the edge"),
                                (30, 3, "stable"), (30, 6, "stable"))),
    (PilotLine(WORKS, f"pilot \"works\" (good result in the lab at 10 s), read as ≥ {WORKS:.0%} stored"),),
)
ONE_HZ_DAY = 86_400
ONE_HZ_PILOT = 84_000 / ONE_HZ_DAY
ONE_HZ = PilotFinding(
    "pilot-1hz-buffering", "Turin 1 Hz home meters over 4G, one day",
    (PilotCase("no buffering", {"meters.link_1hz.buffering": False}, "< 84,000 / day"),
     PilotCase("buffering", {"meters.link_1hz.buffering": True}, "complete")),
    (PilotLine(ONE_HZ_PILOT, "pilot: 84,000 of 86,400 a day, below which disaggregation could not run"),
     PilotLine(0.999, "a complete day with buffering: ≥ 99.9 %")),
    one_hz=True,
)
FINDINGS = {f.name: f for f in (RF_MESH, ONE_HZ)}


def set_field(s: Scenario, path: str, value: object) -> None:
    """``meters.link.gateways`` = value on a loaded scenario."""
    *parents, leaf = path.split(".")
    node: object = s
    for p in parents:
        node = getattr(node, p)
    setattr(node, leaf, value)


def stored_shares(summary: RunSummary, span_s: float, interval_s: float | None) -> dict[str, float]:
    """Per home meter, readings stored over readings due in the run (its first day).

    ``interval_s`` None: the 1 Hz meters, one sample a second; homes holding fewer than half of those have no 1 Hz
    meter (their few interval readings are left out).
    """
    due = span_s / (interval_s or 1.0)
    out = {}
    for device, days in summary.completeness["per_meter"].items():
        received = days[0]["received"]
        if device.startswith(HOME_METER_PREFIX) and (interval_s is not None or received > due / 2):
            out[device] = received / due
    return out


def run_case(finding: PilotFinding, case: PilotCase, out: Path, span_s: float | None = None,
             meters: int | None = None) -> CaseResult:
    """Run one case of a finding end to end (its scenario file with the case's changes, unpaced)."""
    from gridloop.engine.run import RunOptions, run_scenario  # the engine imports the results package
    from gridloop.scenario.loader import load_scenario

    s = load_scenario(ROOT / "scenarios" / f"{finding.name}.yaml")
    if span_s is not None:
        s.clock.duration = float(span_s)
    if meters is not None:
        s.households.count = meters
        if finding.one_hz:
            s.meters.home_1hz = meters
    for path, value in case.changes.items():
        set_field(s, path, value)
    s.outputs.progress, s.outputs.plots, s.outputs.series = False, False, False
    result = case_result(finding, case, s, run_scenario(s, RunOptions(out=out)))
    result.extra["run_dir"] = out
    return result


def read_case(finding: PilotFinding, case: PilotCase, run_dir: Path) -> CaseResult:
    """A case's result from the directory an earlier ``run_case`` wrote (its summary.json and scenario.json)."""
    s = Scenario.model_validate_json((run_dir / "scenario.json").read_text())
    return case_result(finding, case, s, RunSummary.read(run_dir))


def case_result(finding: PilotFinding, case: PilotCase, s: Scenario, summary: RunSummary) -> CaseResult:
    shares = stored_shares(summary, s.clock.duration, None if finding.one_hz else s.meters.interval)
    lost = summary.links.lost_in_link if summary.links else 0
    return CaseResult(case, shares, lost, {"wall_s": summary.wall_s, "span_s": s.clock.duration,
                                           "links": summary.links})


def markdown(finding: PilotFinding, results: list[CaseResult]) -> str:
    """The numbers behind a finding's plot, as a Markdown table."""
    unit = ONE_HZ_DAY if finding.one_hz else None
    head = "| case | pilot | meters | stored mean | min | max |" + (" samples/day min-max |" if unit else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        row = f"| {r.case.label} | {r.case.pilot} | {len(r.shares)} | {r.mean:.4f} | {r.low:.4f} | {r.high:.4f} |"
        lines.append(row + (f" {r.low * unit:,.0f}-{r.high * unit:,.0f} |" if unit else ""))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from gridloop.study.pilot_plot import plot_finding

    parser = argparse.ArgumentParser(prog="python -m gridloop.study.pilot", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/img"), help="where the plots go")
    parser.add_argument("--runs", type=Path, default=Path("runs/pilot"), help="where the runs go")
    parser.add_argument("--only", choices=sorted(FINDINGS), help="one finding (default: all)")
    parser.add_argument("--replot", action="store_true", help="plot the runs already in --runs, run nothing")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for finding in FINDINGS.values():
        if args.only and finding.name != args.only:
            continue
        dirs = [args.runs / finding.name / f"case{k}" for k in range(len(finding.cases))]
        results = [read_case(finding, case, d) if args.replot else run_case(finding, case, d)
                   for case, d in zip(finding.cases, dirs, strict=True)]
        path = plot_finding(finding, results, args.out / f"{finding.name}.png")
        print(f"## {finding.title}\n\n{markdown(finding, results)}\n{path}\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
