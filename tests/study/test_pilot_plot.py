"""The pilot findings' plot: one bar per case at the run's mean share, whiskers to its lowest and highest meter,
the pilot's verdict under each bar and its figures as lines; and the numbers read from a run summary."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from gridloop.contract import RunSummary
from gridloop.study.pilot import ONE_HZ, ONE_HZ_PILOT, RF_MESH, CaseResult, markdown, stored_shares
from gridloop.study.pilot_plot import finding_figure, plot_finding


def _results() -> list[CaseResult]:
    return [CaseResult(ONE_HZ.cases[0], {"m00001": 0.95, "m00002": 0.96}),
            CaseResult(ONE_HZ.cases[1], {"m00001": 1.0, "m00002": 0.999})]


def test_figure_has_a_bar_per_case_the_spread_and_the_pilots_lines() -> None:
    fig = finding_figure(ONE_HZ, _results())
    ax = fig.axes[0]
    assert [round(b.get_height(), 3) for b in ax.patches] == [95.5, 99.95]
    lines = sorted(round(line.get_ydata()[0], 3) for line in ax.get_lines() if line.get_linestyle() == "--")
    assert lines == [round(100 * ONE_HZ_PILOT, 3), 99.9]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["no buffering\npilot: < 84,000 / day", "buffering\npilot: complete"]
    whiskers = ax.collections[0].get_segments()  # min-max per case
    assert [(round(s[0][1], 3), round(s[1][1], 3)) for s in whiskers] == [(95.0, 96.0), (99.9, 100.0)]
    plt.close(fig)


def test_plot_is_written_as_png(tmp_path) -> None:
    path = plot_finding(RF_MESH, [CaseResult(c, {"m00001": 0.9}) for c in RF_MESH.cases], tmp_path / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_stored_shares_read_home_meters_from_the_summary() -> None:
    per_meter = {"m00001": [{"expected": 60, "received": 57}], "m00002": [{"expected": 60, "received": 60}],
                 "ss0": [{"expected": 60, "received": 60}]}
    summary = RunSummary.model_construct(completeness={"per_meter": per_meter})
    assert stored_shares(summary, 600.0, 10.0) == {"m00001": 0.95, "m00002": 1.0}
    one_hz = {"m00001": [{"expected": 1, "received": 590}], "m00002": [{"expected": 1, "received": 1}]}
    summary = RunSummary.model_construct(completeness={"per_meter": one_hz})
    assert stored_shares(summary, 600.0, None) == pytest.approx({"m00001": 590 / 600})


def test_markdown_gives_the_1hz_samples_per_day() -> None:
    table = markdown(ONE_HZ, _results())
    assert "| no buffering | < 84,000 / day | 2 | 0.9550 | 0.9500 | 0.9600 | 82,080-82,944 |" in table
