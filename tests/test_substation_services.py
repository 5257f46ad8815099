"""Services in a run of several substations: each substation runs its own demand response, which hears only its
substation's DIA and commands only its own homes; its KPIs are the substation's, joined over the partitions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridloop.contract import CommandName
from gridloop.engine.run import RunOptions
from gridloop.engine.workers import run_workers
from gridloop.scenario.loader import load_scenario

LIMIT_KW = 140.0
SCENARIO = f"""\
name: substation-services
seed: 5
clock: {{start: "2026-01-15T17:30:00+01:00", duration: 20min, step: 1min, realtime: true, speed: 60}}
grid: {{network: 1-LV-urban6--0-sw, substations: 2}}
households: {{ev_share: 0.5}}
meters: {{interval: 1min}}
services:
  - name: demand_response
    args: {{substation-meter: ss0, limit-kw: {LIMIT_KW}, cap-kw: 0.2}}
kpis: {{transformer_limit_kw: {LIMIT_KW}}}
outputs: {{progress: false, plots: false, series: false}}
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("workers", [1, 2])
def test_each_substation_runs_its_own_demand_response(tmp_path: Path, workers: int) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO)
    summary = run_workers(path, load_scenario(path), RunOptions(out=tmp_path / "run", progress=False), workers)
    run_dir = tmp_path / "run"
    commands = [entry for k in range(workers)
                for entry in json.loads((run_dir / f"part-{k}" / "commands.json").read_text())]
    for name in ("s001", "s002"):
        kpis = summary.kpis["by_substation"][name]
        # the baseline (without the service) was over the limit; the service curtailed and held it lower
        assert kpis["baseline_minutes_above_limit"] > 0, kpis
        assert kpis["energy_curtailed_kwh"] > 0 and kpis["minutes_above_limit"] < kpis["baseline_minutes_above_limit"]
        assert kpis["command_latency_ms"]["p95"] >= kpis["command_latency_ms"]["p50"] >= 0
        logs = list(run_dir.glob(f"part-*/service-demand_response-{name}.json"))
        assert len(logs) == 1, logs  # one service a substation, run by the partition that owns it
        decisions = json.loads(logs[0].read_text())
        sent = [dev for d in decisions if d.get("action") == "curtail" for dev in d["devices"]]
        # its commands went to its own substation's homes only, and its grid applied each of them
        assert sent and all(dev.startswith(f"{name}-m") for dev in sent), sent
        applied = [c["device"] for c in commands
                   if c["command"] == CommandName.LOAD_CURTAIL and c["device"].startswith(f"{name}-")]
        assert applied and set(applied) <= set(sent)  # (one sent in the last step may not be applied)
    assert summary.commands.executed == len(commands) and summary.commands.failed == 0
