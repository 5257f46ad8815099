"""The columns a point adds when a service is in the loop: its KPIs, its commands' round trip, the simulator's lag."""

from __future__ import annotations

from gridloop.contract import RunSummary
from gridloop.study.command_watch import RoundTrips

# KPIs summed over the run's substations (each substation's own service and transformer limit)
SUMMED_KPIS = ("minutes_above_limit", "baseline_minutes_above_limit", "energy_curtailed_kwh")


def service_columns(summary: RunSummary, substations: int, trips: RoundTrips | None) -> dict:
    """Service KPIs summed over substations, how many substations it acted in, command round trip, lag."""
    kpis = summary.kpis or {}
    per = kpis.get("by_substation") or ({"substation-1": kpis} if kpis else {})
    row: dict = {"substations": substations, "max_lag_s": round(summary.realtime.max_lag_s, 3),
                 "commands_executed": summary.commands.executed, "commands_failed": summary.commands.failed}
    for name in SUMMED_KPIS:
        values = [k[name] for k in per.values() if name in k]
        if values:
            row[name] = round(sum(values), 2)
    row["substations_acting"] = sum(k.get("energy_curtailed_kwh", 0.0) > 0 for k in per.values())
    if trips is not None:
        row.update(trips.percentiles())
    return row
