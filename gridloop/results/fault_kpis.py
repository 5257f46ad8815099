"""Fault-location KPIs from ground truth: right section or not, how far off, how fast, customer-minutes saved."""

from __future__ import annotations

import json
from pathlib import Path

from gridloop.grid_models.net_cache import as_pandapower


def section_distance(net, line_a: int, line_b: int) -> int:
    """Sections (lines) between two lines in the normal topology; 0 when they are the same line."""
    if line_a == line_b:
        return 0
    if line_a not in net.line.index or line_b not in net.line.index:
        return -1
    import networkx as nx
    import pandapower.topology as top

    graph = top.create_nxgraph(as_pandapower(net), respect_switches=False, include_trafos=True)
    a = (int(net.line.from_bus.at[line_a]), int(net.line.to_bus.at[line_a]))
    b = (int(net.line.from_bus.at[line_b]), int(net.line.to_bus.at[line_b]))
    try:
        return 1 + min(nx.shortest_path_length(graph, x, y) for x in a for y in b)
    except nx.NetworkXNoPath:
        return -1


def fault_location_kpis(net, truth: list[dict], service_log: Path, commands: list[dict], step_s: float,
                        outage_meter_steps: int, meters_dead_after_fault: int, end_s: float) -> dict:
    """Compare the fault-location service's answer and actions with the fault that really happened."""
    if not truth:
        return {}
    fault = truth[0]
    result = json.loads(service_log.read_text()) if service_log.exists() and service_log.stat().st_size else {}
    located = result.get("line", -1) if result else -1
    actions = [c for c in commands if c["sim_time_s"] >= fault["at_s"] and c["command"].startswith("switch.")]
    baseline_cml = meters_dead_after_fault * (end_s - fault["at_s"]) / 60.0
    actual_cml = outage_meter_steps * step_s / 60.0
    return {
        "true_line": fault["line"],
        "located_line": located,
        "correct_section": located == fault["line"],
        "distance_in_sections": section_distance(net, located, fault["line"]) if located >= 0 else -1,
        "time_to_first_action_s": round(actions[0]["sim_time_s"] - fault["at_s"], 1) if actions else None,
        "switching_actions": [f"{c['command']} {c['device']}" for c in actions],
        "customer_minutes_lost": round(actual_cml, 1),
        "baseline_customer_minutes_lost": round(baseline_cml, 1),
        "customer_minutes_saved": round(baseline_cml - actual_cml, 1),
        "trips": fault["trips"],
    }
