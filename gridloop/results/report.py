"""What a run writes at its end: the recorded series, the feeder plot, the grid figures and the KPIs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gridloop.controllers.simulator_controller import SimulatorController
from gridloop.grid_models.faults import FaultInjector
from gridloop.grid_models.grid_stage import GridStage
from gridloop.results.fault_kpis import fault_location_kpis
from gridloop.results.kpis import KpiRecorder, write_report
from gridloop.results.plots import plot_feeder_voltages, plot_substations
from gridloop.results.recorder import RunRecorder
from gridloop.scenario.model import Scenario
from gridloop.virtual_meters.meter_events import SupplyCounters

SUBSTATIONS_PLOT = "substations.png"  # a run of several substations, at a glance


def write_series(units: list[tuple[str, bool, RunRecorder, int]], run_dir: Path, s: Scenario) -> list[str]:
    """Each substation's (name, namespaced, recorder, meters) series, in its own folder when there are several,
    and the first one's feeder plot."""
    outputs: list[str] = []
    if s.outputs.series:
        for name, namespaced, recorder, _ in units:
            sub = "" if len(units) == 1 and not namespaced else name
            outputs += [f"{sub}/{f}" if sub else f for f in recorder.write(run_dir / sub)]
    if s.outputs.plots:
        name, namespaced, recorder, meters = units[0]
        local = s.clock.start.tzinfo
        title = f"{s.name}: {s.grid.network}, {meters} meters" + (f" ({name})" if namespaced else "")
        plot_feeder_voltages(recorder.bus_voltages().tz_convert(local), recorder.line_loading().tz_convert(local),
                             run_dir / "feeder_voltages.png", title)
        outputs.append("feeder_voltages.png")
        if len(units) > 1:
            plot_substations({n: r.bus_voltages().tz_convert(local) for n, _, r, _ in units},
                             {n: r.line_loading().tz_convert(local) for n, _, r, _ in units},
                             run_dir / SUBSTATIONS_PLOT, substations_title(s, sum(m for *_, m in units)))
            outputs.append(SUBSTATIONS_PLOT)
    return outputs


def substations_title(s: Scenario, meters: int) -> str:
    return f"{s.name}: {s.grid.substations} substations of {s.grid.network}, {meters} meters"


def plot_partitioned_substations(s: Scenario, run_dir: Path, part_dirs: list[Path], meters: int) -> list[str]:
    """The whole run's substations plot from the series the partitions wrote (each in its own ``part-K/sNNN``)."""
    import pandas as pd

    if not (s.outputs.plots and s.outputs.series and s.grid.copies > 1):
        return []
    local = s.clock.start.tzinfo
    vm, loading = {}, {}
    for folder in sorted(d for part in part_dirs for d in part.iterdir() if (d / "grid_bus_vm_pu.parquet").exists()):
        vm[folder.name] = pd.read_parquet(folder / "grid_bus_vm_pu.parquet").tz_convert(local)
        loading[folder.name] = pd.read_parquet(folder / "grid_line_loading_percent.parquet").tz_convert(local)
    if not vm:
        return []
    plot_substations(vm, loading, run_dir / SUBSTATIONS_PLOT, substations_title(s, meters))
    return [SUBSTATIONS_PLOT]


def grid_summary(recorders: list[RunRecorder]) -> dict:
    vms = [r.bus_voltages().to_numpy() for r in recorders]
    energized = np.concatenate([np.where(vm > 0, vm, np.nan).ravel() for vm in vms])
    return {
        "v_min_pu": round(float(np.nanmin(energized)), 6),
        "v_max_pu": round(float(np.nanmax(energized)), 6),
        "max_line_loading_percent": round(max(float(r.line_loading().to_numpy().max()) for r in recorders), 4),
        "deenergized_bus_steps": int(sum((vm <= 0).sum() for vm in vms)),
    }


def substation_kpis(s: Scenario, kpi: KpiRecorder, controller: SimulatorController) -> dict:
    """One substation's KPIs in a run of several: its transformer against the limit, and how long its commands
    took from publication to being applied in its grid (wall clock)."""
    kpis = kpi.kpis(s.kpis.transformer_limit_kw, sum(b.capacity_kwh for b in s.grid.batteries) or None)
    if kpis and controller.counters.latency_ms:
        kpis["command_latency_ms"] = _command_latency(controller.counters.latency_ms)
    return kpis


def fault_kpis(s: Scenario, grid: GridStage, faults: FaultInjector, supply: SupplyCounters,
               controller: SimulatorController, service_log: Path, n_steps: int) -> dict:
    """The fault-location KPIs of one grid that had a fault (scored against its own service's answer)."""
    if not faults.faults:
        return {}
    return {"fault_location": fault_location_kpis(
        grid.net, faults.ground_truth(), service_log, controller.log, s.clock.step, supply.outage_meter_steps,
        supply.meters_dead_after_fault, n_steps * s.clock.step)}


def _command_latency(latency_ms: list[float]) -> dict[str, float]:
    return {"p50": float(np.percentile(latency_ms, 50)), "p95": float(np.percentile(latency_ms, 95)),
            "max": float(np.max(latency_ms))}


def run_kpis(s: Scenario, grid: GridStage, kpi: KpiRecorder, faults: FaultInjector, supply: SupplyCounters,
             controller: SimulatorController, run_dir: Path, n_steps: int) -> tuple[dict, list[str]]:
    """The closed-loop KPIs of a one-substation run and, when it has services, batteries or a limit, its report."""
    battery_kwh = sum(b.capacity_kwh for b in s.grid.batteries) or None
    kpis = kpi.kpis(s.kpis.transformer_limit_kw, battery_kwh)
    if grid.batteries is not None:  # what went in minus what came out minus what is still stored
        stored_change_kwh = float(grid.batteries.soc_mwh.sum() * 1000) - sum(b.soc * b.capacity_kwh
                                                                                for b in s.grid.batteries)
        frame = kpi.frame()
        h = s.clock.step / 3600
        kpis["battery_losses_kwh"] = round(float(frame.battery_kw.clip(lower=0).sum() * h
                                                 + frame.battery_kw.clip(upper=0).sum() * h) - stored_change_kwh, 4)
    if controller.counters.latency_ms:
        kpis["command_latency_ms"] = _command_latency(controller.counters.latency_ms)
    kpis.update(fault_kpis(s, grid, faults, supply, controller, run_dir / "service-fault_location.json", n_steps))
    report: list[str] = []
    if kpi.times and (s.services or s.grid.batteries or s.kpis.transformer_limit_kw):
        frame = kpi.frame()
        frame.to_parquet(run_dir / "kpi_series.parquet")
        report = write_report(frame.tz_convert(s.clock.start.tzinfo), kpis, run_dir, f"{s.name}: KPIs")
    return kpis, report
