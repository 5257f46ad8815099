"""Run a scenario: wire the stages on one SimPy clock and write the run directory.

profiles → grid → meters → DIA → MQTT → platform → command → controller → grid.
The engine talks to the platform only through MQTT (DIA, controller) and REST (provisioning,
scenario commands, the final count of stored readings).
"""

from __future__ import annotations

import collections
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
from gridloop.engine.kpis import write_report
from gridloop.engine.pacing import LagMeter
from gridloop.engine.platform_client import PlatformClient, PlatformError
from gridloop.engine.plots import plot_feeder_voltages
from gridloop.engine.provisioning import provision
from gridloop.engine.services import ServiceProcess
from gridloop.engine.step_loop import StepLoop
from gridloop.engine.substation_unit import SubstationUnit, build_unit, substations_of_partition
from gridloop.engine.utility_stage import UtilityMeterStage
from gridloop.mqtt_client import TlsFiles, connect, wait_for
from gridloop.scenario.model import Scenario
from gridloop.virtual_meters.dia import DeviceIntegrationAdapter
from gridloop.virtual_meters.meter_types.substation import SubstationMeterBank

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
        if s.platform.dia_id == "dia-1" and s.grid.substations == 1:  # several substations: a DIA each
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

    part, parts = (options.partition if options and options.partition else (0, 1))
    count = s.grid.substations
    units = [build_unit(s, i) for i in substations_of_partition(count, part, parts)]
    n_steps = int(round(s.clock.duration / s.clock.step))
    # one substation split by meters: every partition simulates it all and publishes its share; the lead
    # answers commands and runs the substation, utility meters and services
    split_meters = count == 1 and parts > 1
    lead = part == 0 or count > 1
    owned = None
    if split_meters:
        u = units[0]
        owned = {m for i, m in enumerate(u.meters.ids) if i % parts == part}
        if lead:
            owned |= set(u.substation.ids) | {dev for dev, _, _ in u.utilities.devices()} | set(u.meters.blink.ids)
        else:
            u.utilities = UtilityMeterStage(u.s.model_copy(update={"meters": s.meters.model_copy(
                update={"utility": type(s.meters.utility)()})}))

    with _Services(s, run_dir) as services_ctx:
        api = services_ctx.api
        for u in units:
            provision(api, u, s.platform.dia_id)
        broker = BrokerAddress.parse(services_ctx.broker_uri)
        p = s.platform
        tls = TlsFiles(p.tls_ca, p.tls_cert, p.tls_key)
        creds = (p.mqtt_username, p.mqtt_password or "") if p.mqtt_username else None
        controllers = [SimulatorController(broker, p.tenant, u.actuators, respond=lead, tls=tls, credentials=creds,
                                           device_prefix=u.prefix) for u in units]
        # a DIA announces itself only once its substation's controller listens for commands
        dias = [DeviceIntegrationAdapter(broker, p.tenant, u.prefix + p.dia_id, s.meters.dia_batch,
                                         buffer_readings=s.meters.dia_buffer_readings, credentials=creds, tls=tls,
                                         device_prefix=u.prefix) for u in units]
        if split_meters and lead:  # every partition must hear the scenario's commands: wait for all their DIAs
            _wait_partitions_online(broker, p.tenant, p.dia_id, parts, tls, creds)
        services = [ServiceProcess(svc.name, svc.args, api.base_url, api.api_key, services_uri(services_ctx),
                                   s.platform.tenant, run_dir) for svc in s.services if lead]
        for service in services:
            service.start()
            services_ctx.callback(service.stop)
        for service in services:
            service.wait_ready()
        lag = LagMeter(speed=s.clock.speed)
        env = (simpy.rt.RealtimeEnvironment(factor=1.0 / s.clock.speed, strict=False)
               if s.clock.realtime else simpy.Environment())
        if not lead:
            units[0].substation = SubstationMeterBank([], s.meters.interval, np.random.default_rng([s.seed, 1]))
        loops = [StepLoop(u.s, u.grid, u.meters, u.path, u.utilities, u.substation, dia, controller, api,
                          u.recorder, u.kpi, owned=owned, send_commands=lead, broker=services_ctx.broker)
                 for u, dia, controller in zip(units, dias, controllers, strict=True)]
        if s.clock.realtime and options and options.wall_start:  # partitions share one wall-clock epoch
            time.sleep(max(0.0, options.wall_start - time.time()))
        start, start_ms = loops[0].start, loops[0].start_ms
        loop_wall0 = time.monotonic()

        def clock(progress_tick):
            for k in range(n_steps):
                if s.clock.realtime:
                    lag.step_started(env.now)
                for loop in loops:
                    loop.step(env.now)
                progress_tick()
                if k < n_steps - 1:
                    yield env.timeout(s.clock.step)

        with _progress(s.outputs.progress, n_steps, s.name) as tick:
            env.process(clock(tick))
            env.run()
        for loop in loops:
            loop.drain(n_steps * s.clock.step)

        for service in services:
            service.stop()
        published_ok = all([dia.flush(timeout_s=60) for dia in dias])
        loop_wall_s = time.monotonic() - loop_wall0  # stepping until the broker has every reading
        published = sum(dia.readings_acknowledged for dia in dias)
        end_ms = start_ms + int(round(n_steps * s.clock.step * 1000))
        stored = _wait_stored(api, start_ms, end_ms, target=published, timeout_s=120)
        metrics = api.metrics()
        completeness = _completeness_per_day(api, start_ms, end_ms)
        for dia in dias:
            dia.close()
        for controller in controllers:
            controller.close()
        if not published_ok:
            log.warning("broker did not acknowledge %d readings",
                        sum(dia.readings_offered - dia.readings_acknowledged for dia in dias))

    outputs = _write_series(units, run_dir, s)
    (run_dir / "commands.json").write_text(json.dumps(
        [{**entry, "device": u.prefix + entry["device"]} for u, c in zip(units, controllers, strict=True)
         for entry in c.log], indent=1))
    kpis: dict = {}
    faults: list = []
    if count == 1:
        kpis, report = _kpis(units[0], loops[0], controllers[0], s, run_dir, n_steps)
        outputs += report
        faults = loops[0].faults.ground_truth()
    grid_summary = _grid_summary(units)
    summary = {
        "scenario": s.name,
        "seed": s.seed,
        "sim_start": start.isoformat(),
        "sim_end": (start + pd.Timedelta(seconds=n_steps * s.clock.step)).isoformat(),
        "steps": n_steps,
        "wall_s": round(time.monotonic() - wall0, 3),
        "loop_wall_s": round(loop_wall_s, 3),
        "realtime": {"enabled": s.clock.realtime, "speed": s.clock.speed,
                     "max_lag_s": round(lag.max_lag_s, 4), "late_steps": lag.late_steps},
        "meters": sum(u.meter_count for u in units),
        "substations": [u.name for u in units],
        "messages": {
            "readings_sampled": sum(loop.counters.sampled for loop in loops),
            "readings_published": published,
            "readings_stored": stored,
            "readings_lost": sum(loop.counters.sampled for loop in loops) - stored,
            "rejected": int(metrics.get("rejected", 0)),
        },
        "grid": {"network": s.grid.network, "backend": units[0].grid.backend, **grid_summary},
        "links": {
            "technology": s.meters.link.technology,
            "gateways": s.meters.link.gateways * sum(u.path.gateway is not None for u in units),
            "buffering": s.meters.link.buffering,
            "lost_in_link": sum(u.path.counters.lost_in_link for u in units),
            "dropped_gateway_overflow": sum(u.path.counters.dropped_overflow for u in units),
            "buffered_at_end": sum(u.path.buffered for u in units),
            "dia_dropped": sum(dia.readings_dropped for dia in dias),
        },
        "demand": {
            "source": s.households.source,
            "energy_not_served_kwh": round(sum(float(u.grid.demand.energy_not_served_wh().sum())
                                               for u in units) / 1000, 4),
        },
        "batteries": {
            u.prefix + dev: {"soc": round(float(u.grid.batteries.soc_frac[i]), 4),
                             "p_kw_last": round(float(u.grid.batteries.p_mw[i] * 1000), 3)}
            for u in units if u.grid.batteries is not None for i, dev in enumerate(u.grid.battery_ids)
        },
        "events": {"published": sum(dia.events_published for dia in dias),
                   "by_type": dict(sorted(sum((collections.Counter(loop.counters.events) for loop in loops),
                                              collections.Counter()).items()))},
        "faults": faults,
        "injected": loops[0].injected if count == 1 else [],
        "customer_minutes_lost": round(sum(loop.counters.outage_meter_steps for loop in loops)
                                       * s.clock.step / 60, 2),
        "completeness": completeness,
        "commands": {
            "received": sum(c.counters.received for c in controllers),
            "executed": sum(c.counters.executed for c in controllers),
            "rejected": sum(c.counters.rejected for c in controllers),
            "failed": sum(c.counters.failed for c in controllers),
        },
        "kpis": kpis,
        "outputs": outputs,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _write_series(units: list[SubstationUnit], run_dir: Path, s: Scenario) -> list[str]:
    """Each substation's recorded series (in its own folder when there are several) and the feeder plot."""
    outputs: list[str] = []
    if s.outputs.series:
        for u in units:
            sub = "" if len(units) == 1 and not u.prefix else u.name
            outputs += [f"{sub}/{name}" if sub else name for name in u.recorder.write(run_dir / sub)]
    if s.outputs.plots:
        u = units[0]
        local = s.clock.start.tzinfo
        title = f"{s.name}: {s.grid.network}, {len(u.meters)} meters" + (f" ({u.name})" if u.prefix else "")
        plot_feeder_voltages(u.recorder.bus_voltages().tz_convert(local), u.recorder.line_loading().tz_convert(local),
                             run_dir / "feeder_voltages.png", title)
        outputs.append("feeder_voltages.png")
    return outputs


def _grid_summary(units: list[SubstationUnit]) -> dict:
    vms = [u.recorder.bus_voltages().to_numpy() for u in units]
    energized = np.concatenate([np.where(vm > 0, vm, np.nan).ravel() for vm in vms])
    return {
        "v_min_pu": round(float(np.nanmin(energized)), 6),
        "v_max_pu": round(float(np.nanmax(energized)), 6),
        "max_line_loading_percent": round(max(float(u.recorder.line_loading().to_numpy().max()) for u in units), 4),
        "deenergized_bus_steps": int(sum((vm <= 0).sum() for vm in vms)),
    }


def _kpis(u: SubstationUnit, loop: StepLoop, controller: SimulatorController, s: Scenario, run_dir: Path,
          n_steps: int) -> tuple[dict, list[str]]:
    """The closed-loop KPIs of a one-substation run and, when it has services, batteries or a limit, its report."""
    grid, kpi = u.grid, u.kpi
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
    report: list[str] = []
    if kpi.times and (s.services or s.grid.batteries or s.kpis.transformer_limit_kw):
        frame = kpi.frame()
        frame.to_parquet(run_dir / "kpi_series.parquet")
        report = write_report(frame.tz_convert(s.clock.start.tzinfo), kpis, run_dir, f"{s.name}: KPIs")
    return kpis, report


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
