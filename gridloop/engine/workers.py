"""`gridloop run --workers N`: N local partitions of one scenario, sharing one broker, platform and clock.

The parent starts the broker and platform (embedded unless given), then N child processes
``gridloop run --partition K/N``. With ``grid.substations`` > 1 each child runs its share of the substations
(the work divides); with one substation each simulates the whole grid and publishes its share of the meters.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from gridloop.broker_accounts import child_environment
from gridloop.contract.summary import Messages, RunSummary
from gridloop.engine.run import RunOptions, RunServices, resolve, run_dir_of
from gridloop.engine.substation_unit import substations_of_partition
from gridloop.results.merged_summary import merged_summary
from gridloop.results.report import plot_partitioned_substations
from gridloop.results.stored import completeness_per_day, wait_stored
from gridloop.scenario.model import Scenario
from gridloop.scenario.overrides import RunRefused
from gridloop.tenant_access import ENV_TENANT

START_MARGIN_S = 15.0  # time for the children to load the grid before a shared real-time start


def run_workers(scenario_path: Path, scenario: Scenario, options: RunOptions, workers: int) -> RunSummary:
    s = resolve(scenario, RunOptions(**{**options.__dict__, "partition": None, "wall_start": None}))
    substations_of_partition(s.grid.copies, 0, workers)  # more partitions than substations: say so now
    if s.grid.coupling is not None and s.grid.is_district and workers > s.grid.substations:
        raise RunRefused(f"{workers} partitions for {s.grid.substations} LV substations: grid.coupling gives each "
                         "partition whole LV substations, so use at most grid.substations partitions")
    run_dir = run_dir_of(s, options)
    wall0 = time.monotonic()
    with RunServices(s, run_dir) as services:
        api = services.api
        wall_start = time.time() + START_MARGIN_S if s.clock.realtime else None
        mv = _mv_federation(s, workers, services, run_dir)
        children = []
        child_env = child_environment(services.credentials, GRIDLOOP_API_KEY=api.api_key)
        if options.tenant:  # the partitions read the scenario file: the tenant chosen on this command line goes along
            child_env[ENV_TENANT] = options.tenant
        for k in range(workers):
            cmd = [sys.executable, "-m", "gridloop", "run", str(scenario_path), "--partition", f"{k}/{workers}",
                   "--broker", services.broker_uri, "--api-url", api.base_url, "--out", str(run_dir / f"part-{k}"),
                   "--no-progress"]
            for flag, value in (("--seed", options.seed), ("--until", options.until), ("--speed", s.clock.speed
                                if s.clock.realtime else None), ("--wall-start", wall_start)):
                if value is not None:
                    cmd += [flag, str(value)]
            if s.clock.realtime:
                cmd.append("--realtime")
            if mv is not None:
                cmd += ["--helics-broker", mv.address]
            log = (run_dir / f"part-{k}.log").open("wb")
            children.append(subprocess.Popen(cmd, stdout=log, stderr=log, env=child_env))
        codes = _wait(children, mv)
        if any(codes):
            raise RuntimeError(f"partitions failed with exit codes {codes}; see {run_dir}/part-*.log")
        if mv is not None:
            mv.result()  # its report (residual per step, MV bus voltages) is mv-federate.json
        parts = [RunSummary.read(run_dir / f"part-{k}") for k in range(workers)]
        start_ms = int(pd.Timestamp(parts[0].sim_start).value // 1_000_000)
        end_ms = int(pd.Timestamp(parts[0].sim_end).value // 1_000_000)
        sampled = sum(p.messages.readings_sampled for p in parts)
        published = sum(p.messages.readings_published for p in parts)
        stored = wait_stored(api, start_ms, end_ms, target=published, timeout_s=120)
        rejected = api.metrics().rejected
        completeness = completeness_per_day(api, start_ms, end_ms)
    meters = sum(p.meters for p in parts) if s.grid.copies > 1 else parts[0].meters
    plots = plot_partitioned_substations(s, run_dir, [run_dir / f"part-{k}" for k in range(workers)], meters)
    summary = merged_summary(s, parts, time.monotonic() - wall0, Messages(
        readings_sampled=sampled, readings_published=published, readings_stored=stored,
        readings_lost=sampled - stored, rejected=rejected), completeness, plots)
    summary.write(run_dir)
    return summary


def _mv_federation(s: Scenario, workers: int, services: RunServices, run_dir: Path):
    """grid.coupling: the HELICS broker and the MV federate, started before the partitions (closed with the run)."""
    if s.grid.coupling is None:
        return None
    from gridloop.grid_models.coupling.scenario_federates import MvFederation

    mv = MvFederation(s, workers, int(round(s.clock.duration / s.clock.step)), run_dir)
    services.callback(mv.close)
    return mv


def _wait(children: list[subprocess.Popen], mv) -> list[int]:
    """The partitions' exit codes. Coupled, they wait on each other's time grants: if the MV federate or one
    partition fails, the others (stuck waiting for it) are ended."""
    if mv is None:
        return [c.wait() for c in children]
    while any(c.poll() is None for c in children):
        failed = mv.failed()
        if failed is not None or any(c.returncode for c in children):
            for c in children:
                if c.poll() is None:
                    c.kill()
            if failed is not None:
                raise RuntimeError(failed)
        time.sleep(0.2)
    return [c.wait() for c in children]
