"""The run's summary and output files, from what the stages counted and the platform reported."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gridloop.contract import RunSummary
from gridloop.contract.summary import QueryableLatency
from gridloop.controllers.simulator_controller import SimulatorController
from gridloop.engine.step_loop import Pacer
from gridloop.engine.substation_unit import SubstationUnit
from gridloop.results.report import fault_kpis, grid_summary, run_kpis, substation_kpis
from gridloop.results.series_writer import SeriesWriter
from gridloop.scenario.model import Scenario
from gridloop.virtual_meters.dia import DeviceIntegrationAdapter
from gridloop.virtual_meters.link_summary import link_summary


@dataclass
class RunFacts:
    """The run's clock and what the platform said at its end."""

    s: Scenario
    wall0: float
    loop_wall_s: float = 0.0
    published: int = 0
    stored: int = 0
    rejected: int = 0
    completeness: dict = field(default_factory=dict)
    pacer: Pacer | None = None
    queryable: QueryableLatency | None = None

    def __post_init__(self) -> None:
        self.start = pd.Timestamp(self.s.clock.start).tz_convert("UTC")
        self.start_ms = int(self.start.value // 1_000_000)
        self.n_steps = int(round(self.s.clock.duration / self.s.clock.step))
        self.end_ms = self.start_ms + int(round(self.n_steps * self.s.clock.step * 1000))


def write_outputs(facts: RunFacts, units: list[SubstationUnit], dias: list[DeviceIntegrationAdapter],
                  controllers: list[SimulatorController], run_dir: Path, series: SeriesWriter) -> RunSummary:
    """Commands, KPIs and report into run_dir, beside the series; returns the summary (also in summary.json)."""
    s = facts.s
    outputs = series.files()
    (run_dir / "commands.json").write_text(json.dumps(
        [{**entry, "device": u.prefix + entry["device"]} for u, c in zip(units, controllers, strict=True)
         for entry in c.log], indent=1))
    kpis: dict = {}
    if s.grid.copies > 1:  # each substation's own (the partitions' are joined by merged_summary)
        own = {u.name: {**substation_kpis(s, u.kpi, c), **fault_kpis(
                   s, u.grid, u.grid.faults, u.meter_events.counters, c,
                   run_dir / f"service-fault_location-{u.name}.json", facts.n_steps)}
               for u, c in zip(units, controllers, strict=True)}
        kpis = {"by_substation": {name: k for name, k in own.items() if k}} if any(own.values()) else {}
    elif len(units) == 1:
        u = units[0]
        kpis, report = run_kpis(s, u.grid, u.kpi, u.grid.faults, u.meter_events.counters, controllers[0], run_dir,
                                facts.n_steps)
        outputs += report
    summary = RunSummary.model_validate({**_summary(facts, units, dias, controllers), "kpis": kpis,
                                         "outputs": outputs})
    summary.write(run_dir)
    return summary


def _summary(facts: RunFacts, units: list[SubstationUnit], dias: list[DeviceIntegrationAdapter],
             controllers: list[SimulatorController]) -> dict:
    s = facts.s
    sampled = sum(u.publisher.sampled for u in units)
    return {
        "scenario": s.name, "seed": s.seed, "sim_start": facts.start.isoformat(),
        "sim_end": (facts.start + pd.Timedelta(seconds=facts.n_steps * s.clock.step)).isoformat(),
        "steps": facts.n_steps, "wall_s": round(time.monotonic() - facts.wall0, 3),
        "loop_wall_s": round(facts.loop_wall_s, 3),
        "realtime": {"enabled": s.clock.realtime, "speed": s.clock.speed,
                     "max_lag_s": round(facts.pacer.max_lag_s if facts.pacer else 0.0, 4),
                     "late_steps": facts.pacer.late_steps if facts.pacer else 0},
        "meters": sum(u.meter_count for u in units),
        "substations": [u.name for u in units],
        "messages": {"readings_sampled": sampled, "readings_published": facts.published,
                     "readings_stored": facts.stored, "readings_lost": sampled - facts.stored,
                     "rejected": facts.rejected},
        "grid": {"network": s.grid.network, "backend": units[0].grid.backend,
                 **grid_summary([u.recorder for u in units])},
        "links": link_summary(s.meters.link, [c for u in units for c in u.link_classes],
                              [p for u in units for p in u.paths()], [u.path for u in units],
                              sum(dia.readings_dropped for dia in dias)),
        "demand": {"source": s.households.source,
                   "energy_not_served_kwh": round(sum(float(u.grid.demand.energy_not_served_wh().sum())
                                                      for u in units) / 1000, 4)},
        "batteries": {
            u.prefix + dev: {"soc": round(float(u.grid.batteries.soc_frac[i]), 4),
                             "p_kw_last": round(float(u.grid.batteries.p_mw[i] * 1000), 3)}
            for u in units if u.grid.batteries is not None for i, dev in enumerate(u.grid.battery_ids)
        },
        "events": {"published": sum(dia.events_published for dia in dias),
                   "by_type": dict(sorted(sum((u.event_publisher.events for u in units), Counter()).items()))},
        "faults": [{**f, **_where(u)} for u in units for f in u.grid.faults.ground_truth()],
        "injected": [{**x, **_where(u)} for u in units for x in u.events.injected],
        "customer_minutes_lost": round(sum(u.meter_events.counters.outage_meter_steps for u in units)
                                       * s.clock.step / 60, 2),
        "completeness": facts.completeness,
        "queryable_latency": facts.queryable,
        "commands": {k: sum(getattr(c.counters, k) for c in controllers)
                     for k in ("received", "executed", "rejected", "failed")},
    }


def _where(u: SubstationUnit) -> dict:
    """A fault's or disturbance's substation, when the run has several (the namespace of its devices)."""
    return {"substation": u.name} if u.prefix else {}
