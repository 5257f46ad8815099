"""One plot per pilot finding: the run's stored share per case (mean bar, min-max whisker over the meters) beside
what the pilot reported for that case and the pilot's figures as lines."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from gridloop.study.pilot import CaseResult, PilotFinding

BAR_COLOUR = "tab:blue"
LINE_COLOURS = ("tab:red", "tab:green", "tab:orange")


def finding_figure(finding: PilotFinding, results: list[CaseResult]) -> Figure:
    """Bars: mean share of readings stored per meter for each case; whiskers: the lowest and highest meter;
    under each bar the pilot's verdict for the case; dashed lines: the pilot's figures."""
    fig, ax = plt.subplots(figsize=(max(5.5, 1.3 * len(results) + 2.5), 5.0))
    x = list(range(len(results)))
    means = [100 * r.mean for r in results]
    ax.bar(x, means, color=BAR_COLOUR, width=0.6, label="run: mean per meter (whisker: min-max)")
    ax.errorbar(x, means, yerr=[[m - 100 * r.low for m, r in zip(means, results, strict=True)],
                                [100 * r.high - m for m, r in zip(means, results, strict=True)]],
                fmt="none", ecolor="black", capsize=4)
    for xi, m in zip(x, means, strict=True):
        ax.annotate(f"{m:.2f}", (xi, m), textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8,
                    color="white")
    for line, colour in zip(finding.lines, LINE_COLOURS, strict=False):
        ax.axhline(100 * line.share, color=colour, linestyle="--", linewidth=1.2, label=line.label)
    ax.set_xticks(x, [f"{r.case.label}\npilot: {r.case.pilot}" for r in results], fontsize=8)
    low = min([100 * r.low for r in results] + [100 * line.share for line in finding.lines])
    ax.set_ylim(max(0.0, low - 0.25 * (100 - low) - 1), 100.5)
    ax.set_ylabel("readings stored per meter, %")
    ax.set_title(finding.title, fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_finding(finding: PilotFinding, results: list[CaseResult], path: Path) -> Path:
    fig = finding_figure(finding, results)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
