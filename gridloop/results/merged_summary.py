"""One run summary of the partitions' own (``gridloop run --workers N``).

Two kinds of partitioned run add up differently. Several substations (``grid.substations`` > 1) are split
between the partitions: each simulates and publishes only its own, so every count adds up and per-substation
results are joined. One substation split by meters: every partition simulates the whole grid and every meter
(so the grid, the links and the KPIs are the same in each, and the lead partition 0 answers the commands) but
publishes only its own share, so only what is published adds up. A coupled grid (``grid.coupling``) is one net
whose LV substations the partitions solve, each stepping every meter: it adds up as one substation does, but its
grid extremes are taken over the partitions and what a de-energised bus costs (customer minutes, energy not
served) adds up, since each partition sees its own buses only. Lists come out in substation order, as one
process running every substation writes them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from gridloop.contract.summary import (
    CommandCounts,
    EventCounts,
    LinkPath,
    LinkSummary,
    Messages,
    Realtime,
    RunSummary,
)
from gridloop.scenario.model import Scenario

_LINK_COUNTS = ("lost_in_link", "dropped_gateway_overflow", "buffered_at_end")


def merged_summary(s: Scenario, parts: list[RunSummary], wall_s: float, messages: Messages,
                   completeness: dict, outputs: Sequence[str] = ()) -> RunSummary:
    """The whole run's summary from its partitions' (in partition order), with what the coordinator measured:
    ``messages`` (stored as the platform counts it) and ``completeness`` (of the whole run), and the files it
    wrote (``outputs``; the partitions' own are listed under ``part-K/``)."""
    split = s.grid.copies > 1  # disjoint substations: everything adds up
    own_buses = split or s.grid.coupling is not None  # each partition sees only its own buses de-energised
    lead = parts[0]
    grids = [p.grid for p in parts]
    grid = grids[0].model_copy(update={
        "v_min_pu": min(g.v_min_pu for g in grids), "v_max_pu": max(g.v_max_pu for g in grids),
        "max_line_loading_percent": max(g.max_line_loading_percent for g in grids),
        "deenergized_bus_steps": sum(g.deenergized_bus_steps for g in grids)}) if split or s.grid.coupling \
        else grids[0]
    commands = CommandCounts(**{k: sum(getattr(p.commands, k) for p in parts) for k in CommandCounts.model_fields}
                             ) if split else lead.commands
    return RunSummary(
        scenario=s.name, seed=s.seed, sim_start=lead.sim_start, sim_end=lead.sim_end, steps=lead.steps,
        wall_s=round(wall_s, 3),
        realtime=Realtime(enabled=s.clock.realtime, speed=s.clock.speed,
                          max_lag_s=max(p.realtime.max_lag_s for p in parts),
                          late_steps=sum(p.realtime.late_steps for p in parts)),
        meters=sum(p.meters for p in parts) if split else lead.meters,
        messages=messages, grid=grid, commands=commands,
        substations=sorted(name for p in parts for name in p.substations) if split else lead.substations,
        links=_links(parts, split),
        demand=_demand(parts) if own_buses else lead.demand,
        batteries={k: v for p in parts for k, v in p.batteries.items()} if split else lead.batteries,
        events=_events(parts),
        faults=_by_substation([f for p in parts for f in p.faults]) if split else lead.faults,
        injected=_by_substation([x for p in parts for x in p.injected]) if split else lead.injected,
        customer_minutes_lost=round(sum(p.customer_minutes_lost for p in parts), 2) if own_buses
        else lead.customer_minutes_lost,
        completeness=completeness,
        kpis=_kpis(parts) if split else {} if s.grid.coupling else lead.kpis,
        outputs=[*outputs, *(f"part-{k}/{f}" for k, p in enumerate(parts) for f in p.outputs)],
        partitions=[{"partition": f"{k}/{len(parts)}", "wall_s": p.wall_s, "loop_wall_s": p.loop_wall_s,
                     "substations": p.substations, **p.messages.model_dump()} for k, p in enumerate(parts)],
    )


def _links(parts: list[RunSummary], split: bool) -> LinkSummary | None:
    """Link counts: added over the partitions' substations when split; otherwise every partition ran every
    meter's link alike and the lead's counts are the run's. What the DIAs dropped adds up either way."""
    links = [p.links for p in parts if p.links is not None]
    if not links:
        return None
    dia_dropped = sum(link.dia_dropped for link in links)
    if not split:
        return links[0].model_copy(update={"dia_dropped": dia_dropped})
    paths: dict[str, LinkPath] = {}
    for path in (path for link in links for path in link.paths):
        have = paths.get(path.meters)
        paths[path.meters] = path if have is None else have.model_copy(update={
            "meter_count": have.meter_count + path.meter_count, "gateways": have.gateways + path.gateways,
            **{k: getattr(have, k) + getattr(path, k) for k in _LINK_COUNTS}})
    return links[0].model_copy(update={
        "gateways": sum(link.gateways for link in links), "dia_dropped": dia_dropped,
        **{k: sum(getattr(link, k) for link in links) for k in _LINK_COUNTS}, "paths": list(paths.values())})


def _by_substation(entries: list[dict]) -> list[dict]:
    """Faults or disturbances in substation order (each partition's already in its own order)."""
    return sorted(entries, key=lambda entry: entry.get("substation", ""))


def _events(parts: list[RunSummary]) -> EventCounts | None:
    """Events a partition publishes are its own meters' (also when it simulates every meter): they add up."""
    counts = [p.events for p in parts if p.events is not None]
    if not counts:
        return None
    by_type = sum((Counter(c.by_type) for c in counts), Counter())
    return EventCounts(published=sum(c.published for c in counts), by_type=dict(sorted(by_type.items())))


def _demand(parts: list[RunSummary]) -> dict:
    demand = dict(parts[0].demand)
    if "energy_not_served_kwh" in demand:
        demand["energy_not_served_kwh"] = round(sum(p.demand.get("energy_not_served_kwh", 0.0) for p in parts), 4)
    return demand


def _kpis(parts: list[RunSummary]) -> dict:
    """Each substation's KPIs, as its partition reported them (``by_substation``)."""
    by_substation = {name: kpis for p in parts for name, kpis in p.kpis.get("by_substation", {}).items()}
    return {"by_substation": dict(sorted(by_substation.items()))} if by_substation else {}
