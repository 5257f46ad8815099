"""Run one study point through the real broker and platform and measure it into one table row."""

from __future__ import annotations

import logging
import os
import statistics
import time
from pathlib import Path

import httpx
import numpy as np
import yaml

from gridloop.contract import RunSummary
from gridloop.engine.run import RunOptions, run_scenario
from gridloop.scenario.model import Scenario
from gridloop.study.command_watch import CommandWatcher, applied_commands
from gridloop.study.history import fill_history, plan_history, queried_meter
from gridloop.study.monitor import Monitor
from gridloop.study.probe import LatencyProbe
from gridloop.study.service_row import service_columns
from gridloop.study.services import PROBE_DEVICE, StudyServices
from gridloop.study.sweep import Point

log = logging.getLogger(__name__)
MB = 1024 * 1024
DAY_MS = 86_400_000


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"latency_p50_ms": None, "latency_p95_ms": None, "latency_p99_ms": None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"latency_p50_ms": round(float(p50), 1), "latency_p95_ms": round(float(p95), 1),
            "latency_p99_ms": round(float(p99), 1)}


def time_queries(api_url: str, api_key: str, device: str, quantity: str, start_ms: int, end_ms: int,
                 repeats: int = 5, history_day: tuple[int, int] | None = None) -> dict[str, float]:
    """Median wall time of REST queries: one meter's raw readings and 15-min means over the run's window, the
    completeness report over it, the tenant's metrics (which count its stored readings); with ``history_day`` (a
    day of restored history), that meter's raw readings and 15-min means of that day too."""
    agg = {"quantity": quantity, "interval": "15m", "agg": "mean"}
    run = {"start": start_ms, "end": end_ms}
    queries = [("query_readings_ms", f"/api/v1/devices/{device}/readings", run),
               ("query_aggregates_ms", f"/api/v1/devices/{device}/aggregates", {**run, **agg}),
               ("query_completeness_ms", "/api/v1/completeness", run),
               ("query_metrics_ms", "/api/v1/metrics", {})]
    if history_day is not None:
        day = {"start": history_day[0], "end": history_day[1]}
        queries += [("query_history_readings_ms", f"/api/v1/devices/{device}/readings", day),
                    ("query_history_aggregates_ms", f"/api/v1/devices/{device}/aggregates", {**day, **agg})]
    out: dict[str, float] = {}
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=120) as http:
        for name, path, params in queries:
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                http.get(path, params=params).raise_for_status()
                times.append((time.perf_counter() - t) * 1000)
            out[name] = round(statistics.median(times), 2)
    return out


def run_point(point: Point, out_dir: Path, realtime: bool = False, speed: float | None = None) -> dict:
    """Run the point's scenario against freshly started services (the store first restored with the point's
    history, if any); return its measured row."""
    s = point.scenario
    if realtime:  # set on the scenario itself, so that the row reports the pace the run had
        s = s.model_copy(update={"clock": s.clock.model_copy(
            update={"realtime": True, "speed": speed if speed is not None else s.clock.speed})})
    plan = plan_history(s, point.history_s) if point.history_s > 0 else None
    restore = (lambda path: fill_history(path, s.platform.tenant, plan)) if plan is not None else None
    with StudyServices(out_dir, s.platform.tenant, point.ingest_workers, restore) as svc:
        if plan is not None:
            log.info("history %s: %s", point.label, svc.restored)
        platform = s.platform.model_copy(update={"broker": svc.broker_uri, "api_url": svc.api_url,
                                                 "api_key": svc.api_key, "store": None})
        s = s.model_copy(update={"platform": platform})
        bytes0 = svc.store_bytes()
        monitor = Monitor(svc.pids, svc.api_url, svc.admin_key)
        monitor.start()
        probe = LatencyProbe(svc.broker_uri, s.platform.tenant, PROBE_DEVICE, svc.store_path).start()
        watcher = CommandWatcher(svc.store_path, s.platform.tenant) if s.services else None
        if watcher is not None:
            watcher.start()
        t0, children0 = time.time(), _children_cpu_s()
        try:
            summary = _run(s, point.partitions, out_dir)
        finally:
            t1 = time.time()
            probe.stop()
            if watcher is not None:
                watcher.stop()
            usage = monitor.stop(_children_cpu_s() - children0)
        start_ms = int(s.clock.start.timestamp() * 1000)
        trips = watcher.round_trips(applied_commands(out_dir / "run"), start_ms) if watcher is not None else None
        end_ms = start_ms + int(summary.steps * s.clock.step * 1000)
        device, quantity = queried_meter(s)
        day = (plan.end_ms - DAY_MS, plan.end_ms) if plan is not None and plan.days >= 1 else None
        queries = time_queries(svc.api_url, svc.api_key, device, quantity, start_ms, end_ms, history_day=day)
    db_bytes = svc.store_bytes()  # after the platform stopped: the WAL is checkpointed into the file
    row = _row(point, s, summary, realtime, t1 - t0, usage, monitor, probe, queries, db_bytes - bytes0, db_bytes)
    row["partitions"] = point.partitions
    if s.services or point.partitions > 1:
        row.update(service_columns(summary, s.grid.copies, trips))
    if plan is not None:
        row.update({**svc.restored, "history_raw_meters": plan.raw_meters})
    return row


def _children_cpu_s() -> float:
    """CPU seconds of this process's reaped children: partitions and service processes once they ended."""
    t = os.times()
    return t.children_user + t.children_system


def _run(s: Scenario, partitions: int, out_dir: Path) -> RunSummary:
    """The point's run: in this process, or as ``gridloop run --workers N`` does it (the scenario written out)."""
    options = RunOptions(out=out_dir / "run", progress=False)
    if partitions == 1:
        return run_scenario(s, options)
    from gridloop.engine.workers import run_workers

    path = out_dir / "scenario.yaml"
    path.write_text(yaml.safe_dump(s.model_dump(mode="json", exclude_none=True), sort_keys=False))
    return run_workers(path, s, options, partitions)


def _row(point: Point, s, summary: RunSummary, realtime: bool, span_s: float, usage: dict, monitor: Monitor,
         probe: LatencyProbe, queries: dict, grown: int, db_bytes: int) -> dict:
    m = summary.messages
    sim_s = summary.steps * s.clock.step
    published, stored = m.readings_published, m.readings_stored
    # paced: the meters offered their readings over the simulated span, stretched by any lag;
    # fast: only the whole run's wall time is known, so that rate is a lower bound
    offer_s = sim_s / s.clock.speed + summary.realtime.max_lag_s if realtime else summary.wall_s
    window = monitor.timeline.active_window()
    # stored over the span the store was busy, but never faster than offered over the offering span
    store_s = max((window[1] - window[0]) if window else span_s, offer_s if realtime else 0.0)
    lat = [ms for sent, ms in probe.samples if window is None or window[0] <= sent <= window[1]]
    if len(lat) < 5:
        lat = [ms for _, ms in probe.samples]
    row: dict = {"point": point.label, **{f"sweep_{k}": v for k, v in point.values.items()},
                 "history_days": round(point.history_s / 86400, 3),
                 "meters": summary.meters, "interval_s": s.meters.interval, "step_s": s.clock.step,
                 "sim_s": sim_s, "mode": f"realtime x{s.clock.speed:g}" if realtime else "fast",
                 "ingest_workers": point.ingest_workers, "wall_s": round(span_s, 2),
                 "readings_sampled": m.readings_sampled, "readings_stored": stored,
                 "readings_lost": m.readings_lost,
                 "loss_pct": round(100 * m.readings_lost / max(m.readings_sampled, 1), 4),
                 "offered_per_s": round(published / max(offer_s, 1e-9), 1),
                 "stored_per_s": round(stored / max(store_s, 1e-9), 1),
                 "sim_late_steps": summary.realtime.late_steps, **_percentiles(lat),
                 "probe_sent": len(probe.sent), "probe_lost": probe.lost}
    for name in ("broker", "platform", "simulator"):
        u = usage.get(name)
        if u is None:
            continue
        row[f"{name}_cpu_pct"] = round(100 * u.cpu_s / max(span_s, 1e-9), 1)
        row[f"{name}_cpu_s"] = round(u.cpu_s, 3)
        row[f"{name}_us_per_reading"] = round(1e6 * u.cpu_s / max(stored, 1), 2)
        row[f"{name}_rss_mb"] = round(u.rss_max_bytes / MB, 1)
    row["ingest_messages"] = int(monitor.ingest.get("messages", 0))
    row["ingest_commits"] = int(monitor.ingest.get("write_batches", 0))
    row["readings_per_commit"] = round(stored / max(row["ingest_commits"], 1), 1)
    per_sim_s = m.readings_sampled / max(sim_s, 1e-9)
    row["db_bytes"] = db_bytes
    row["db_mb"] = round(db_bytes / 1e6, 1)
    # a tiny run can shrink the file (its WAL checkpointed away); then the whole file is the better estimate
    row["bytes_per_reading"] = round((grown if grown > 0 else db_bytes) / max(stored, 1), 1)
    row["db_gb_per_day"] = round(row["bytes_per_reading"] * per_sim_s * 86400 / 1e9, 3)
    row["readings_per_day"] = round(per_sim_s * 86400)
    row.update(queries)
    row["no_loss"] = m.readings_lost == 0
    row["kept_up"] = row["no_loss"] and row["stored_per_s"] >= 0.95 * row["offered_per_s"]
    return row
