"""Run a scenario: wire the stages on one SimPy clock and write the run directory.

profiles → grid → meters → DIA → MQTT → platform → command → controller → grid.
The engine talks to the platform only through MQTT (DIA, controller) and REST (provisioning,
scenario commands, the final count of stored readings).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import simpy
import simpy.rt
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from gridloop.broker import EmbeddedBroker
from gridloop.contract import BrokerAddress, topic
from gridloop.controllers.simulator_controller import SimulatorController
from gridloop.engine.embedded import EmbeddedPlatform
from gridloop.engine.fault_kpis import fault_location_kpis
from gridloop.engine.kpis import KpiRecorder, write_report
from gridloop.engine.pacing import LagMeter
from gridloop.engine.platform_client import PlatformClient, PlatformError
from gridloop.engine.plots import plot_feeder_voltages
from gridloop.engine.recorder import RunRecorder
from gridloop.engine.services import ServiceProcess
from gridloop.engine.stages import (
    GridStage,
    battery_actuators,
    flexible_load_actuators,
    switch_actuators,
    transformer_actuators,
)
from gridloop.engine.step_loop import StepLoop
from gridloop.engine.topology import radial_tree
from gridloop.engine.utility_stage import UtilityMeterStage
from gridloop.mqtt_client import TlsFiles, connect, wait_for
from gridloop.scenario.model import Scenario
from gridloop.virtual_meters.dia import DeviceIntegrationAdapter
from gridloop.virtual_meters.gateway import Gateway
from gridloop.virtual_meters.home_meters import HomeMeterFleet
from gridloop.virtual_meters.meter_types import SubstationMeterBank
from gridloop.virtual_meters.reading_path import DegradableLink, ReadingPath, build_link

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """Command-line overrides of the scenario (None keeps the scenario's value)."""

    out: Path | None = None
    seed: int | None = None
    until: float | None = None
    realtime: bool | None = None
    speed: float | None = None
    broker: str | None = None
    store: str | None = None
    progress: bool | None = None
    api_url: str | None = None
    api_key: str | None = None
    partition: tuple[int, int] | None = None  # (K, N): this process publishes meters with index % N == K
    wall_start: float | None = None  # real time: Unix time at which simulated time 0 starts (shared clock)


def _resolve(scenario: Scenario, options: RunOptions) -> Scenario:
    s = scenario.model_copy(deep=True)
    if options.seed is not None:
        s.seed = options.seed
    if options.until is not None:
        s.clock.duration = min(options.until, s.clock.duration) if options.until > 0 else s.clock.duration
    if options.realtime is not None:
        s.clock.realtime = options.realtime
    if options.speed is not None:
        s.clock.speed = options.speed
    if options.broker is not None:
        s.platform.broker = options.broker
    if options.store is not None:
        s.platform.store = options.store
    if options.progress is not None:
        s.outputs.progress = options.progress
    if options.api_url is not None:
        s.platform.api_url, s.platform.api_key = options.api_url, options.api_key
    if options.partition is not None and options.partition[1] > 1:
        if s.platform.broker is None or s.platform.api_url is None:
            raise ValueError("a partition of a run needs the shared broker and platform: --broker and --api-url")
        if s.platform.dia_id == "dia-1":
            s.platform.dia_id = f"dia-{options.partition[0] + 1}"
    return s


class _Services(contextlib.ExitStack):
    """Broker and platform for one run: embedded ones are started here and stopped on exit."""

    def __init__(self, scenario: Scenario, run_dir: Path) -> None:
        super().__init__()
        try:
            self._start(scenario, run_dir)
        except BaseException:
            self.close()  # what did start must not outlive a failed start
            raise

    def _start(self, scenario: Scenario, run_dir: Path) -> None:
        p = scenario.platform
        self.embedded_platform: EmbeddedPlatform | None = None
        self.broker: EmbeddedBroker | None = None
        if p.broker is None:
            broker = EmbeddedBroker(workdir=str(run_dir / "broker")).start()
            self.callback(broker.stop)
            self.broker_uri = broker.uri
            self.broker = broker
        else:
            self.broker_uri = p.broker
        if p.api_url is not None:
            self.api = PlatformClient(p.api_url, p.api_key)
            self.api.wait_healthy()
        else:
            if p.store is None:  # the embedded store belongs to this run: a rerun starts from an empty one
                for old in run_dir.glob("store.db*"):
                    old.unlink()
            store = p.store or f"sqlite:///{(run_dir / 'store.db').resolve()}"
            self.embedded_platform = EmbeddedPlatform(self.broker_uri, store, run_dir).start()
            self.callback(self.embedded_platform.stop)
            admin = PlatformClient(self.embedded_platform.url)
            try:
                admin.wait_healthy(60)
            except PlatformError:
                raise PlatformError("embedded platform did not start:\n" + self.embedded_platform.log_tail()) from None
            key = admin.create_tenant(p.tenant, self.embedded_platform.admin_key)
            admin.close()
            self.api = PlatformClient(self.embedded_platform.url, key)
        self.callback(self.api.close)


def run_scenario(scenario: Scenario, options: RunOptions | None = None) -> dict:
    """Run a scenario to its end and return the run summary (also written to summary.json)."""
    s = _resolve(scenario, options or RunOptions())
    run_dir = Path(options.out) if options and options.out else Path(s.outputs.dir.format(scenario=s.name))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "scenario.json").write_text(s.model_dump_json(indent=2))
    wall0 = time.monotonic()

    grid = GridStage.build(s)
    n_steps = int(round(s.clock.duration / s.clock.step))
    rng = np.random.default_rng([s.seed, 1])
    meter_ids = [f"m{i + 1:05d}" for i in range(len(grid.household_index))]
    meters = HomeMeterFleet(meter_ids, grid.household_bus, grid.demand.home_phase(),
                            _one_hz_homes(grid, s.meters.home_1hz), s.meters.interval,
                            np.random.default_rng([s.seed, 7]), initial_wh=rng.uniform(1e5, 5e7, len(meter_ids)),
                            blink_detectors=s.meters.blink_detectors)
    actuators = (switch_actuators(grid) + battery_actuators(grid) + flexible_load_actuators(grid, meter_ids)
                 + transformer_actuators(grid))
    path = _reading_path(s, len(meters.sampled))
    utilities = UtilityMeterStage(s)
    substation = _substation_meters(grid, s.meters.interval, s.seed)
    kpi = KpiRecorder(s.clock.step)

    part, parts = (options.partition if options and options.partition else (0, 1))
    lead = part == 0  # the lead partition answers commands and runs the substation, utility meters and services
    owned = {m for i, m in enumerate(meter_ids) if i % parts == part}
    if lead:
        owned |= set(substation.ids) | {dev for dev, _, _ in utilities.devices()} | set(meters.blink.ids)
    else:
        utilities = UtilityMeterStage(s.model_copy(update={"meters": s.meters.model_copy(
            update={"utility": type(s.meters.utility)()})}))

    with _Services(s, run_dir) as services_ctx:
        api = services_ctx.api
        _provision(api, s, meters, grid, actuators, utilities, substation)
        broker = BrokerAddress.parse(services_ctx.broker_uri)
        p = s.platform
        tls = TlsFiles(p.tls_ca, p.tls_cert, p.tls_key)
        creds = (p.mqtt_username, p.mqtt_password or "") if p.mqtt_username else None
        controller = SimulatorController(broker, p.tenant, actuators, respond=lead, tls=tls, credentials=creds)
        # the DIA announces itself only once this partition's controller listens for commands
        dia = DeviceIntegrationAdapter(broker, p.tenant, p.dia_id, s.meters.dia_batch,
                                       buffer_readings=s.meters.dia_buffer_readings, credentials=creds, tls=tls)
        if lead and parts > 1:  # every partition must hear the scenario's commands: wait for all their DIAs
            _wait_partitions_online(broker, p.tenant, p.dia_id, parts, tls, creds)
        services = [ServiceProcess(svc.name, svc.args, api.base_url, api.api_key, services_uri(services_ctx),
                                   s.platform.tenant, run_dir) for svc in s.services if lead]
        for service in services:
            service.start()
            services_ctx.callback(service.stop)
        for service in services:
            service.wait_ready()
        recorder = RunRecorder(grid.bus_names, grid.line_names, grid.trafo_names)
        lag = LagMeter(speed=s.clock.speed)
        env = (simpy.rt.RealtimeEnvironment(factor=1.0 / s.clock.speed, strict=False)
               if s.clock.realtime else simpy.Environment())
        if not lead:
            substation = SubstationMeterBank([], s.meters.interval, rng)
        loop = StepLoop(s, grid, meters, path, utilities, substation, dia, controller, api, recorder, kpi,
                        owned=owned if parts > 1 else None, send_commands=lead, broker=services_ctx.broker)
        if s.clock.realtime and options and options.wall_start:  # partitions share one wall-clock epoch
            time.sleep(max(0.0, options.wall_start - time.time()))
        start, start_ms = loop.start, loop.start_ms

        def clock(progress_tick):
            for k in range(n_steps):
                if s.clock.realtime:
                    lag.step_started(env.now)
                loop.step(env.now)
                progress_tick()
                if k < n_steps - 1:
                    yield env.timeout(s.clock.step)

        with _progress(s.outputs.progress, n_steps, s.name) as tick:
            env.process(clock(tick))
            env.run()
        loop.drain(n_steps * s.clock.step)

        for service in services:
            service.stop()
        published_ok = dia.flush(timeout_s=60)
        published = dia.readings_acknowledged
        end_ms = start_ms + int(round(n_steps * s.clock.step * 1000))
        stored = _wait_stored(api, start_ms, end_ms, target=published, timeout_s=120)
        metrics = api.metrics()
        completeness = _completeness_per_day(api, start_ms, end_ms)
        dia.close()
        controller.close()
        if not published_ok:
            log.warning("broker did not acknowledge %d readings", dia.readings_offered - published)

    vm = recorder.bus_voltages()
    loading = recorder.line_loading()
    outputs = recorder.write(run_dir) if s.outputs.series else []
    if s.outputs.plots:
        local = s.clock.start.tzinfo
        plot_feeder_voltages(vm.tz_convert(local), loading.tz_convert(local), run_dir / "feeder_voltages.png",
                             f"{s.name}: {s.grid.network}, {len(meter_ids)} meters")
        outputs.append("feeder_voltages.png")
    (run_dir / "commands.json").write_text(json.dumps(controller.log, indent=1))
    battery_kwh = sum(b.capacity_kwh for b in s.grid.batteries) or None
    kpis = kpi.kpis(s.kpis.transformer_limit_kw, battery_kwh)
    if grid.batteries is not None:  # what went in minus what came out minus what is still stored
        stored_change_kwh = float(grid.batteries.soc_mwh.sum() * 1000) - sum(b.soc * b.capacity_kwh
                                                                                for b in s.grid.batteries)
        frame = kpi.frame()
        h = s.clock.step / 3600
        kpis["battery_losses_kwh"] = round(float(frame.battery_kw.clip(lower=0).sum() * h
                                                 + frame.battery_kw.clip(upper=0).sum() * h) - stored_change_kwh, 4)
    latency = controller.counters.latency_ms
    if latency:
        kpis["command_latency_ms"] = {"p50": float(np.percentile(latency, 50)), "max": float(np.max(latency))}
    if loop.faults.faults:
        kpis["fault_location"] = fault_location_kpis(
            grid.net, loop.faults.ground_truth(), run_dir / "service-fault_location.json", controller.log,
            s.clock.step, loop.counters.outage_meter_steps, loop.counters.meters_dead_after_fault,
            n_steps * s.clock.step)
    if kpi.times and (s.services or s.grid.batteries or s.kpis.transformer_limit_kw):
        frame = kpi.frame()
        frame.to_parquet(run_dir / "kpi_series.parquet")
        outputs += write_report(frame.tz_convert(s.clock.start.tzinfo), kpis, run_dir, f"{s.name}: KPIs")
    energized_vm = vm.where(vm > 0)
    summary = {
        "scenario": s.name,
        "seed": s.seed,
        "sim_start": start.isoformat(),
        "sim_end": (start + pd.Timedelta(seconds=n_steps * s.clock.step)).isoformat(),
        "steps": n_steps,
        "wall_s": round(time.monotonic() - wall0, 3),
        "realtime": {"enabled": s.clock.realtime, "speed": s.clock.speed,
                     "max_lag_s": round(lag.max_lag_s, 4), "late_steps": lag.late_steps},
        "meters": len(meter_ids) + utilities.count + len(substation) + len(meters.blink_homes),
        "messages": {
            "readings_sampled": loop.counters.sampled,
            "readings_published": published,
            "readings_stored": stored,
            "readings_lost": loop.counters.sampled - stored,
            "rejected": int(metrics.get("rejected", 0)),
        },
        "grid": {
            "network": s.grid.network,
            "backend": grid.backend,
            "v_min_pu": round(float(np.nanmin(energized_vm.to_numpy())), 6),
            "v_max_pu": round(float(np.nanmax(energized_vm.to_numpy())), 6),
            "max_line_loading_percent": round(float(loading.to_numpy().max()), 4),
            "deenergized_bus_steps": int((vm.to_numpy() <= 0).sum()),
        },
        "links": {
            "technology": s.meters.link.technology,
            "gateways": s.meters.link.gateways if path.gateway is not None else 0,
            "buffering": s.meters.link.buffering,
            "lost_in_link": path.counters.lost_in_link,
            "dropped_gateway_overflow": path.counters.dropped_overflow,
            "buffered_at_end": path.buffered,
            "dia_dropped": dia.readings_dropped,
        },
        "demand": {
            "source": s.households.source,
            "energy_not_served_kwh": round(float(grid.demand.energy_not_served_wh().sum()) / 1000, 4),
        },
        "batteries": {
            dev: {"soc": round(float(grid.batteries.soc_frac[i]), 4),
                  "p_kw_last": round(float(grid.batteries.p_mw[i] * 1000), 3)}
            for i, dev in enumerate(grid.battery_ids)
        } if grid.batteries is not None else {},
        "events": {"published": dia.events_published, "by_type": dict(sorted(loop.counters.events.items()))},
        "faults": loop.faults.ground_truth(),
        "injected": loop.injected,
        "customer_minutes_lost": round(loop.counters.outage_meter_steps * s.clock.step / 60, 2),
        "completeness": completeness,
        "commands": {
            "received": controller.counters.received,
            "executed": controller.counters.executed,
            "rejected": controller.counters.rejected,
            "failed": controller.counters.failed,
        },
        "kpis": kpis,
        "outputs": outputs,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _wait_partitions_online(broker: BrokerAddress, tenant: str, lead_dia: str, parts: int, tls: TlsFiles,
                            creds: tuple[str, str] | None, timeout_s: float = 180.0) -> None:
    """The lead waits until every partition's DIA is online (retained status), i.e. its controller listens."""
    prefix = lead_dia.rsplit("-", 1)[0]
    wanted = {f"{prefix}-{k + 1}" for k in range(parts)}
    online: set[str] = set()

    def on_status(client, userdata, msg) -> None:
        if msg.payload.strip(b'"') == b"online":
            online.add(msg.topic.rsplit("/", 1)[-1])

    watcher = connect(broker, f"gridloop-partitions-{tenant}-{time.monotonic_ns()}", tls=tls,
                      username=(creds or (None, None))[0], password=(creds or (None, None))[1],
                      subscriptions=[(topic(tenant, "status", "+"), 1)], on_message=on_status)
    try:
        if not wait_for(lambda: wanted <= online, timeout_s):
            raise RuntimeError(f"partitions not online after {timeout_s:.0f} s: {sorted(wanted - online)}")
    finally:
        watcher.disconnect()
        watcher.loop_stop()


def services_uri(services_ctx: _Services) -> str:
    return services_ctx.broker_uri


def _one_hz_homes(grid: GridStage, count: int | None) -> np.ndarray:
    """Which homes carry a 1 Hz disaggregation meter: the grid's own (a ``sampling_s`` of 1) or the first N."""
    n = len(grid.household_index)
    if count is not None:
        return np.arange(n) < count
    if "sampling_s" in grid.net.load.columns:
        return (grid.net.load.sampling_s.to_numpy(dtype=float)[grid.household_index] == 1.0)
    return np.zeros(n, dtype=bool)


def _substation_meters(grid: GridStage, interval_s: float, seed: int) -> SubstationMeterBank:
    """A grid meter on each transformer's LV side (the pilots' substation meters, accuracy class C)."""
    ids = [f"ss{i}" for i in range(len(grid.net.trafo))]
    rng = np.random.default_rng([seed, 6])
    return SubstationMeterBank(ids, interval_s, rng, initial_import_wh=rng.uniform(1e7, 1e9, len(ids)))


def _reading_path(s: Scenario, n_meters: int) -> ReadingPath:
    link_cfg = s.meters.link
    link = build_link(link_cfg.technology, n_meters, link_cfg.gateways, link_cfg.profile,
                      np.random.default_rng([s.seed, 2]))
    if link is None:
        return ReadingPath(None)
    link = DegradableLink(link, np.random.default_rng([s.seed, 8]))
    gateway = Gateway(link, link_cfg.buffer_readings, buffering=link_cfg.buffering,
                      bytes_per_reading=link_cfg.bytes_per_reading, rng=np.random.default_rng([s.seed, 3]))
    return ReadingPath(gateway, link_cfg.bytes_per_reading)


def _completeness_per_day(api: PlatformClient, start_ms: int, end_ms: int) -> dict:
    """Expected vs stored readings per meter per simulated day, as the platform reports them."""
    days, per_meter = [], {}
    for lo in range(start_ms, end_ms, 86_400_000):
        hi = min(lo + 86_400_000, end_ms)
        report = api.completeness(lo, hi)["devices"]
        ratios = [d["ratio"] for d in report]
        days.append({"start_ms": lo, "end_ms": hi, "mean": round(float(np.mean(ratios)), 6) if ratios else 1.0,
                     "min": round(float(np.min(ratios)), 6) if ratios else 1.0,
                     "meters_below_99_percent": sum(r < 0.99 for r in ratios)})
        for d in report:
            per_meter.setdefault(d["device"], []).append(
                {"expected": d["expected"], "received": d["received"]})
    return {"per_day": days, "per_meter": per_meter}


def _provision(api: PlatformClient, s: Scenario, meters: HomeMeterFleet, grid: GridStage,
               actuators: list, utilities: UtilityMeterStage, substation: SubstationMeterBank) -> None:
    """Register every device of the scenario under its tenant, as a head-end's provisioning would."""
    api.create_asset({"id": "substation-1", "kind": "substation", "name": s.grid.network})
    tree = radial_tree(grid.net)
    for bus, (parent, line) in tree.items():  # parents first: the tree is in breadth-first order
        api.create_asset({"id": f"bus-{bus}", "kind": "location", "name": f"line {line}" if line >= 0 else "",
                          "parent": f"bus-{parent}" if parent >= 0 else "substation-1"})
    bus_labels = grid.net.bus.index.to_numpy()
    devices = [{"id": s.platform.dia_id, "type": "dia", "asset": "substation-1"}]
    devices += [
        {"id": dev, "type": "home_meter" if hz else "electricity_meter", "phases": 3 if phase < 0 else 1,
         "gateway": s.platform.dia_id,
         "asset": f"bus-{bus_labels[int(b)]}" if int(bus_labels[int(b)]) in tree else "substation-1",
         "meta": {"interval_s": 1.0 if hz else s.meters.interval, "bus": str(grid.bus_names[int(b)]),
                  "phase": ["l1", "l2", "l3"][phase] if phase >= 0 else "l1l2l3"}}
        for dev, b, phase, hz in zip(meters.ids, meters.bus_index, meters.phase.tolist(), meters.one_hz.tolist(),
                                     strict=True)
    ]
    switches = [a.device for a in actuators if a.kind == "switch"]
    devices += [{"id": a.device, "type": "transformer", "asset": "substation-1"}
                for a in actuators if a.kind == "transformer"]
    lv_buses = set(grid.net.trafo.lv_bus.tolist())
    sw_table = grid.net.switch
    devices += [{"id": sw, "type": "switch", "asset": "substation-1", "meta": {
        "bus": int(sw_table.bus.at[int(sw[2:])]),
        "line": int(sw_table.element.at[int(sw[2:])]) if sw_table.et.at[int(sw[2:])] == "l" else None,
        "protective": bool(sw_table.et.at[int(sw[2:])] == "l" and sw_table.bus.at[int(sw[2:])] in lv_buses)}}
        for sw in switches]
    lv_labels = grid.net.trafo.lv_bus.to_numpy()
    devices += [{"id": dev, "type": "substation_meter", "phases": 3, "gateway": s.platform.dia_id,
                 "asset": f"bus-{lv_labels[i]}" if int(lv_labels[i]) in tree else "substation-1",
                 "meta": {"interval_s": substation.interval_s,
                                                   "trafo": str(grid.trafo_names[i])}}
                for i, dev in enumerate(substation.ids)]
    devices += [{"id": dev, "type": kind, "gateway": s.platform.dia_id, "meta": {"interval_s": interval}}
                for dev, kind, interval in utilities.devices()]
    devices += [{"id": dev, "type": "blink_detector", "gateway": s.platform.dia_id,
                 "asset": devices[1 + int(home)]["asset"],
                 "meta": {"interval_s": s.meters.interval, "host_meter": meters.ids[int(home)]}}
                for dev, home in zip(meters.blink.ids, meters.blink_homes, strict=True)]
    devices += [{"id": b.id, "type": "battery", "asset": "substation-1",
                 "meta": {"p_max_kw": b.p_max_kw, "capacity_kwh": b.capacity_kwh}} for b in s.grid.batteries]
    api.provision(devices)


CLOCK_SLACK_MS = 6 * 3600 * 1000  # meters with drifting clocks stamp readings outside the simulated span


def _wait_stored(api: PlatformClient, start_ms: int, end_ms: int, target: int, timeout_s: float) -> int:
    """Readings the platform stored for this run's meters, once it has caught up (or stopped moving)."""
    start_ms, end_ms = start_ms - CLOCK_SLACK_MS, end_ms + CLOCK_SLACK_MS
    deadline = time.monotonic() + timeout_s
    last, still_since = -1, time.monotonic()
    while True:
        got = sum(d["received"] for d in api.completeness(start_ms, end_ms)["devices"])
        if got >= target:
            return got
        now = time.monotonic()
        if got != last:
            last, still_since = got, now
        elif now - still_since > 10 or now > deadline:
            return got
        time.sleep(0.1)


@contextlib.contextmanager
def _progress(enabled: bool, total: int, name: str):
    if not enabled:
        yield lambda: None
        return
    with Progress(TextColumn(f"[bold]{name}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                  TimeElapsedColumn(), TimeRemainingColumn(), transient=False) as progress:
        task = progress.add_task(name, total=total)
        yield lambda: progress.advance(task)
