"""`gridloop view RUN_DIR`: the page of a finished run, replayed from what the run wrote.

The drawing is rebuilt from the run's ``scenario.json`` (the same unit the run built); steps come from the
Parquet series, readings from ``meter_readings.parquet``, commands from ``commands.json`` and faults,
injected events and the platform's completeness from ``summary.json``. The replay goes through the same
state and hub as a live run, so the page is the same page.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from gridloop.contract import CommandName, CommandStatus, RunSummary
from gridloop.view.app import create_view_app
from gridloop.view.commands import CommandTimeline, CommandView
from gridloop.view.hub import FrameHub
from gridloop.view.server import ViewServer
from gridloop.view.state import HISTORY_POINTS, LoopState, SampleView, StepSnapshot, chart_point
from gridloop.view.topology import Topology

SWITCHING = {CommandName.SWITCH_OPEN: False, CommandName.SWITCH_CLOSE: True}


class RecordedRun:
    """A run directory's series, read once."""

    def __init__(self, run_dir: Path, meters: set[str]) -> None:
        """``meters``: the home meters the page draws (the recorded readings also hold the grid's meters)."""
        if not (run_dir / "summary.json").exists():
            raise ValueError(f"{run_dir}: no summary.json (not a finished run's directory)")
        if not (run_dir / "grid_bus_vm_pu.parquet").exists():
            raise ValueError(f"{run_dir}: no grid_bus_vm_pu.parquet (a run of several substations, or "
                             "outputs.series off: the replay shows a single substation's series)")
        self.dir = run_dir
        self.summary = RunSummary.model_validate_json((run_dir / "summary.json").read_text())
        vm = pd.read_parquet(run_dir / "grid_bus_vm_pu.parquet")
        self.times = (vm.index.as_unit("ms").asi8 if hasattr(vm.index, "as_unit")
                      else vm.index.asi8 // 1_000_000).astype(np.int64)
        self.vm = vm.to_numpy(dtype=np.float32)
        lines = pd.read_parquet(run_dir / "grid_line_loading_percent.parquet").to_numpy(dtype=np.float32)
        trafos = pd.read_parquet(run_dir / "grid_trafo_loading_percent.parquet").to_numpy(dtype=np.float32)
        self.loading = np.hstack([lines, trafos])
        self.samples = _samples(run_dir / "meter_readings.parquet", meters)
        commands = run_dir / "commands.json"
        self.commands = json.loads(commands.read_text()) if commands.exists() else []

    @property
    def epoch_ms(self) -> int:
        return int(pd.Timestamp(self.summary.sim_start).value // 1_000_000)

    def completeness(self) -> dict[str, float]:
        """Each meter's share of expected readings the platform stored over the whole run."""
        per_meter = (self.summary.completeness or {}).get("per_meter", {})
        out = {}
        for meter, days in per_meter.items():
            expected = sum(d["expected"] for d in days)
            out[meter] = sum(d["received"] for d in days) / expected if expected else 1.0
        return out

    def events(self) -> list[dict]:
        epoch = self.epoch_ms
        injected = [{"at_ms": epoch + int(e["at_s"] * 1000), **e} for e in self.summary.injected]
        faults = [{"at_ms": epoch + int(f["at_s"] * 1000), "kind": "fault_" + str(f["kind"]), "line": f["line"],
                   "clearing_device": f["clearing_device"]} for f in self.summary.faults]
        return sorted(injected + faults, key=lambda e: e["at_ms"])


def _samples(path: Path, meters: set[str]) -> list[SampleView]:
    """The recorded readings of these meters as one sample per instant (the page keeps each meter's latest)."""
    if not path.exists():
        return []
    frame = pd.read_parquet(path)
    if frame.empty:
        return []
    frame = frame[frame["dev"].astype(str).isin(meters)]
    quantities = [c for c in frame.columns if c not in ("dev", "ts", "seq")]
    return [SampleView(int(ts), group["dev"].astype(str).tolist(),
                       {q: group[q].to_numpy(dtype=float) for q in quantities})
            for ts, group in frame.groupby("ts", sort=True)]


def recorded_topology(run_dir: Path) -> tuple[Topology, int]:
    """The drawing of the run's (first) substation, rebuilt from its scenario; and its number of meters."""
    from gridloop.engine.substation_unit import build_unit
    from gridloop.scenario.loader import load_scenario
    from gridloop.view.live import unit_topology

    unit = build_unit(load_scenario(run_dir / "scenario.json"), 0)
    return unit_topology(unit), len(unit.meters)


class Replay:
    """Plays the recorded steps into the page's state at ``rate`` steps a second, then holds the last one."""

    def __init__(self, run: RecordedRun, state: LoopState, rate: float) -> None:
        self.run, self.state, self.rate = run, state, rate
        self.open_now: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, name="view-replay", daemon=True)

    def start(self) -> Replay:
        self._thread.start()
        return self

    def _play(self) -> None:
        run, state, next_sample = self.run, self.state, 0
        commands = sorted(run.commands, key=lambda c: c["sim_time_s"])
        for step, when in enumerate(run.times):
            if self._stop.is_set():
                return
            while commands and run.epoch_ms + commands[0]["sim_time_s"] * 1000 <= when:
                self._command(commands.pop(0))
            while next_sample < len(run.samples) and run.samples[next_sample].ts_ms <= when:
                state.offer_samples([run.samples[next_sample]])
                next_sample += 1
            rt = run.summary.realtime  # the run's own lag, as its summary kept it (not step by step)
            state.offer(StepSnapshot(step + 1, int(when), run.vm[step], run.loading[step], None, rt.max_lag_s,
                                     rt.late_steps))
            self._stop.wait(1.0 / self.rate)
        state.finish()

    def _command(self, entry: dict) -> None:
        """A command the run executed: on the timeline, and switches open or closed from then on."""
        at = self.run.epoch_ms + int(entry["sim_time_s"] * 1000)
        view = CommandView(entry["id"], entry["device"], entry["command"], entry.get("args", {}),
                           CommandStatus.EXECUTED, "from commands.json", [(CommandStatus.EXECUTED, at)], at)
        self.state.commands.add(view)
        closed = SWITCHING.get(entry["command"])
        if closed is not None:
            (self.open_now.discard if closed else self.open_now.add)(entry["device"])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def start_replay(run_dir: Path, port: int = 0, rate: float = 10.0) -> tuple[ViewServer, FrameHub, Replay]:
    """Serve a finished run's page (the caller stops the three)."""
    topology, meters = recorded_topology(run_dir)
    run = RecordedRun(run_dir, {m for ids in topology.meters_by_bus.values() for m in ids})
    replay: Replay | None = None
    state = LoopState(len(run.times), meters, CommandTimeline(), run.events,
                      lambda: sorted(replay.open_now) if replay else [])
    state.set_completeness(run.completeness())
    every = max(1, -(-len(run.times) // HISTORY_POINTS))  # the whole run's chart at once, thinned to fit
    state.history = [chart_point(t, run.vm[i], run.loading[i], None) for i, t in enumerate(run.times) if i % every == 0]
    replay = Replay(run, state, rate)
    hub = FrameHub(state).start()
    info = {"name": run.summary.scenario, "mode": "replay", "substation": topology.substation}
    server = ViewServer(create_view_app(hub, state, topology, info), port).start()
    replay.start()
    return server, hub, replay


def serve_run_dir(run_dir: Path, port: int = 0, rate: float = 10.0) -> int:
    """The command: serve until Ctrl-C."""
    try:
        server, hub, replay = start_replay(run_dir, port, rate)
    except (ValueError, OSError) as exc:
        print(f"gridloop view: {exc}", file=sys.stderr)
        return 1
    print(f"view of {run_dir}: {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server.wait()
    finally:
        replay.stop()
        hub.stop()
        server.stop()
    return 0
