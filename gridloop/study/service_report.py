"""The part of a study's table and plots about a service in the loop: its commands' round trip, KPI and lag."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# added to table.md when a point ran a service or several partitions (gridloop.study.service_row)
SERVICE_COLUMNS = [
    ("partitions", "partitions"), ("substations", "substations"), ("max_lag_s", "max lag s"),
    ("sim_late_steps", "late steps"), ("commands_executed", "commands"),
    ("command_executed_p50_ms", "accepted→executed p50 ms"), ("command_round_trip_p50_ms", "round trip p50 ms"),
    ("command_round_trip_p95_ms", "round trip p95 ms"), ("commands_not_visible", "not visible"),
    ("minutes_above_limit", "min above limit"), ("baseline_minutes_above_limit", "without service"),
]


def has_service(rows: list[dict]) -> bool:
    return any("commands_executed" in r for r in rows)


def _series(rows: list[dict]) -> dict[str, list[dict]]:
    """One line per interval and partition count, its points in order of homes."""
    lines: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["meters"]):
        lines.setdefault(f"{r['interval_s']:g} s, {r.get('partitions', 1)} partition(s)", []).append(r)
    return lines


def service_figure(rows: list[dict]):
    """Command round trip p95, minutes above the limit with and without the service, and lag, against meters."""
    fig, (trip, kpi, lag) = plt.subplots(1, 3, figsize=(15, 4.2))
    for label, part in _series(rows).items():
        x = [r["meters"] for r in part]
        line = trip.plot(x, [_s(r.get("command_round_trip_p95_ms")) for r in part], "o-", label=f"{label}: p95")
        trip.plot(x, [_s(r.get("command_executed_p50_ms")) for r in part], ":", color=line[0].get_color(),
                  label=f"{label}: accepted→executed p50")
        kpi.plot(x, [r.get("minutes_above_limit", float("nan")) for r in part], "o-", label=f"{label}: with service")
        kpi.plot(x, [r.get("baseline_minutes_above_limit", float("nan")) for r in part], "x:",
                 color=kpi.lines[-1].get_color(), label=f"{label}: without")
        lag.plot(x, [r.get("max_lag_s", float("nan")) for r in part], "o-", label=label)
    trip.set(xlabel="meters", ylabel="s", title="command round trip: REST accepted → visible in readings",
             ylim=(0, None))
    kpi.set(xlabel="meters", ylabel="minutes (summed over substations)", title="service KPI: minutes above limit",
            ylim=(0, None))
    lag.set(xlabel="meters", ylabel="s", title="simulator: largest lag behind real time", ylim=(0, None))
    for ax in (trip, kpi, lag):
        ax.legend(fontsize=6)
    return fig


def _s(ms: float | None) -> float:
    return float("nan") if ms is None else ms / 1000
