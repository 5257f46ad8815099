"""Run a scenario: build each substation's stages, wire them to MQTT and the platform, step them, summarise.

profiles → grid → meters → DIA → MQTT → platform → command → controller → grid.
The engine talks to the platform only through MQTT (DIA, controller) and REST (provisioning,
scenario commands, the final count of stored readings).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gridloop.contract import BrokerAddress, RunSummary
from gridloop.controllers.simulator_controller import SimulatorController
from gridloop.engine.provisioning import provision
from gridloop.engine.run_services import (  # noqa: F401  (RunServices, resolve, run_dir_of: engine.workers)
    RunServices,
    StartedRun,
    resolve,
    run_dir_of,
    start_run,
)
from gridloop.engine.step_loop import Pacer, StepLoop
from gridloop.engine.substation_unit import SubstationUnit, build_unit, substations_of_partition
from gridloop.engine.summary import RunFacts, write_outputs
from gridloop.mqtt_client import TlsFiles, wait_online
from gridloop.profiles.utility_demand import UtilityMeterStage
from gridloop.results.progress import step_progress
from gridloop.results.queryable_latency import QueryableProbe, probe_meters
from gridloop.results.series_writer import SeriesWriter
from gridloop.results.stored import completeness_per_day, wait_stored
from gridloop.scenario.model import Scenario, UtilityMeters
from gridloop.scenario.overrides import RunOptions, RunRefused
from gridloop.services.process import ServiceProcess
from gridloop.stage import ms
from gridloop.virtual_meters.dia import DeviceIntegrationAdapter
from gridloop.virtual_meters.meter_types.substation import SubstationMeterBank
from gridloop.virtual_meters.outbox import Outbox

log = logging.getLogger(__name__)
FAST_RUN_LINGER_S = 0.05  # unpaced, readings of a few steps share an envelope (at most 50 ms of wall time late)


@dataclass
class _Partition:
    """What this process runs: its substations and, of a split one, which meters it publishes."""

    units: list[SubstationUnit]
    lead: bool  # sends the scenario's commands, answers commands, runs the services
    split: bool  # one substation, several partitions
    parts: int
    owned: set[str] | None = None

    @classmethod
    def of(cls, s: Scenario, partition: tuple[int, int] | None, helics_broker: str | None = None) -> _Partition:
        part, parts = partition or (0, 1)
        if s.grid.coupling is not None:
            return cls._coupled(s, part, parts, helics_broker)
        count = s.grid.copies
        units = [build_unit(s, i) for i in substations_of_partition(count, part, parts)]
        self = cls(units, lead=part == 0 or count > 1, split=count == 1 and parts > 1, parts=parts)
        if self.split:  # every partition simulates it all and publishes its share; the lead does the rest
            u = units[0]
            self.owned = {m for i, m in enumerate(u.meters.ids) if i % parts == part}
            if self.lead:
                self.owned |= set(u.substation.ids) | {d for d, _, _ in u.utilities.devices()} | set(u.meters.blink.ids)
            else:
                u.utilities = UtilityMeterStage(UtilityMeters(), u.s.seed, s.clock.start, ms(s.clock.step))
                u.substation = SubstationMeterBank([], s.meters.interval, np.random.default_rng([s.seed, 1]))
        return self


    @classmethod
    def _coupled(cls, s: Scenario, part: int, parts: int, helics_broker: str | None) -> _Partition:
        """An LV federate of a coupled run: the whole district's homes and meters are built (same draws for any
        N), its own LV substations solved, and it publishes their meters (the lead: the utility meters too).
        Even alone it owns only LV substations' meters: those of the MV grid's own transformers (SimBench
        MV+LV) are the MV federate's, which publishes none."""
        from gridloop.grid_models.coupling.lv_solver import CouplingSlot

        if helics_broker is None:
            raise RunRefused("grid.coupling: helics runs through gridloop run (with or without --workers N), "
                             "which starts the HELICS broker and the MV federate; this run has no broker")
        u = build_unit(s, 0, CouplingSlot(part, parts, helics_broker))
        self = cls([u], lead=part == 0, split=parts > 1, parts=parts)
        own_bus = np.zeros(len(u.grid.net.bus), dtype=bool)
        for o in u.grid.solver.own:
            own_bus[o.bus] = True
        homes = own_bus[u.meters.bus_index]
        self.owned = {m for m, mine in zip(u.meters.ids, homes, strict=True) if mine}
        self.owned |= {d for d, i in zip(u.meters.blink.ids, u.meters.blink_homes, strict=True) if homes[i]}
        self.owned |= {f"ss{i}" for o in u.grid.solver.own for i in o.trafo}
        if self.lead:
            self.owned |= {d for d, _, _ in u.utilities.devices()}
        else:
            u.utilities = UtilityMeterStage(UtilityMeters(), u.s.seed, s.clock.start, ms(s.clock.step))
        return self


@dataclass
class _Wiring:
    """The MQTT side of each substation and the services of the run."""

    controllers: list[SimulatorController]
    dias: list[DeviceIntegrationAdapter]
    services: list[ServiceProcess] = field(default_factory=list)


def _outbox(s: Scenario, run_dir: Path, dia_id: str) -> Outbox | None:
    """The DIA's outbox for end-to-end delivery: only a buffering DIA keeps (and resends) what it sent."""
    m = s.meters
    if not (m.end_to_end_delivery and m.dia_buffer_readings > 0):
        return None
    return Outbox(run_dir / f"outbox-{dia_id}.db", max_envelopes=m.dia_buffer_readings,
                  max_readings=m.dia_buffer_readings)


def _wire(s: Scenario, run: _Partition, ctx: RunServices, run_dir: Path) -> _Wiring:
    api, p = ctx.api, s.platform
    for u in run.units:
        provision(api, u, p.dia_id, run.owned)
    broker = BrokerAddress.parse(ctx.broker_uri)
    tls = TlsFiles(p.tls_ca, p.tls_cert, p.tls_key)
    creds = ctx.credentials
    controllers = [SimulatorController(broker, p.tenant, u.actuators, respond=run.lead, tls=tls, credentials=creds,
                                       device_prefix=u.prefix) for u in run.units]
    # a DIA announces itself only once its substation's controller listens for commands
    dias = [DeviceIntegrationAdapter(broker, p.tenant, u.prefix + p.dia_id, s.meters.dia_batch,
                                     buffer_readings=s.meters.dia_buffer_readings, credentials=creds, tls=tls,
                                     device_prefix=u.prefix, outbox=_outbox(s, run_dir, u.prefix + p.dia_id),
                                     linger_s=0.0 if s.clock.realtime else FAST_RUN_LINGER_S)
            for u in run.units]
    if run.split:  # every partition hears the lead's commands from the first step: all their DIAs online at once
        prefix = p.dia_id.rsplit("-", 1)[0]
        wait_online(broker, p.tenant, {f"{prefix}-{k + 1}" for k in range(run.parts)}, 180.0, tls, creds)
    wired = _Wiring(controllers, dias)
    if run.lead:  # several substations: each its own service, hearing its own DIA
        wired.services = [ServiceProcess(svc.name, svc.args, api.base_url, api.api_key, ctx.broker_uri, p.tenant,
                                         run_dir, creds, u.prefix, u.prefix + p.dia_id if u.prefix else None)
                          for svc in s.services for u in (run.units if s.grid.copies > 1 else run.units[:1])]
    for service in wired.services:
        service.start()
        ctx.callback(service.stop)
    for service in wired.services:
        service.wait_ready()
    return wired


def run_scenario(scenario: Scenario, options: RunOptions | None = None,
                 started: StartedRun | None = None) -> RunSummary:
    """Run a scenario to its end and return the run summary (also written to summary.json).

    ``started``: the run's services already starting (``start_run(scenario, options)``, as ``gridloop run``
    does before it imports the engine); else they are started here."""
    options = options or RunOptions()
    started = started or start_run(scenario, options)
    s, run_dir = started.s, started.run_dir
    facts = RunFacts(s, wall0=started.wall0)
    with started.services as ctx:
        series = SeriesWriter(s)  # loads its plotting library while the platform starts
        ctx.callback(series.close)
        run = _Partition.of(s, options.partition, options.helics_broker)  # built while the platform starts
        for u in run.units:  # a coupled run's LV federate leaves the federation however the run ends
            if hasattr(u.grid.solver, "close"):
                ctx.callback(u.grid.solver.close)
        ctx.ready()
        wired = _wire(s, run, ctx, run_dir)
        pipelines = [u.pipeline(dia, c, ctx.api, run.owned, run.lead, ctx.broker)
                     for u, dia, c in zip(run.units, wired.dias, wired.controllers, strict=True)]
        pacer = Pacer(speed=s.clock.speed) if s.clock.realtime else None
        view = _live_view(s, options, run, ctx, facts, pacer) if options.view else None
        loop = StepLoop(pipelines, facts.start_ms, pacer, observers=[view.observer] if view else [])
        if s.clock.realtime and options.wall_start:  # partitions share one wall-clock epoch
            time.sleep(max(0.0, options.wall_start - time.time()))
        probe = _probe(run, wired.dias, ctx) if options.partition is None else None
        series.loaded()
        loop_wall0 = time.monotonic()
        with step_progress(s.outputs.progress, facts.n_steps, s.name) as tick:
            loop.run(facts.end_ms - facts.start_ms, lambda _: tick())
        if view is not None:
            view.finish()
        for u in run.units:  # a coupled run: the MV federate ends with the last LV federate's step
            if hasattr(u.grid.solver, "close"):
                u.grid.solver.close()
        # written while the platform catches up and stops
        series.write([(u.name, bool(u.prefix), u.recorder, len(u.meters)) for u in run.units], run_dir, s)
        for u, dia in zip(run.units, wired.dias, strict=True):  # the gateways forward what they still hold
            for sample in u.drain(facts.end_ms - facts.start_ms, ms(s.clock.step)):
                dia.publish(u.publisher.mine(sample))
        for service in wired.services:
            service.stop()
        published_ok = all([dia.flush(timeout_s=60) for dia in wired.dias])
        facts.loop_wall_s = time.monotonic() - loop_wall0  # stepping until the broker has every reading
        facts.published = sum(dia.readings_acknowledged for dia in wired.dias)
        facts.stored = wait_stored(ctx.api, facts.start_ms, facts.end_ms, target=facts.published, timeout_s=120)
        facts.queryable = probe.finish() if probe is not None else None
        facts.rejected = ctx.api.metrics().rejected
        facts.completeness = completeness_per_day(ctx.api, facts.start_ms, facts.end_ms)
        for closable in (*wired.dias, *wired.controllers):
            closable.close()
        if not published_ok:
            log.warning("broker did not acknowledge %d readings",
                        sum(dia.readings_offered - dia.readings_acknowledged for dia in wired.dias))
        ctx.stop_platform()
        series.files()  # the writer's thread has ended (or its exception is raised) before the services go
    facts.pacer = pacer
    return write_outputs(facts, run.units, wired.dias, wired.controllers, run_dir, series)


def _probe(run: _Partition, dias: list[DeviceIntegrationAdapter], ctx: RunServices) -> QueryableProbe | None:
    """Publish → queryable latency of a few meters, polled over REST while the run goes on."""
    meters = probe_meters([[u.prefix + m for m in u.meters.ids] for u in run.units], run.owned)
    if not meters:
        return None
    probe = QueryableProbe(ctx.api.base_url, ctx.api.api_key, meters)
    for dia in dias:
        dia.on_publish = probe.published
    ctx.callback(probe.close)
    return probe.start()


def _live_view(s: Scenario, options: RunOptions, run: _Partition, ctx: RunServices, facts: RunFacts, pacer):
    """The live view of this process's first substation (``--view``), closed with the run's services."""
    from gridloop.view.live import LiveView, PlatformAccess

    p = s.platform
    access = PlatformAccess(ctx.api.base_url, ctx.api.api_key or "", ctx.broker_uri, p.tenant, ctx.credentials,
                            TlsFiles(p.tls_ca, p.tls_cert, p.tls_key))
    view = LiveView(run.units[0], access, facts.n_steps, facts.start_ms, s.name, pacer, options.view_port,
                    options.view_key)
    ctx.callback(view.close)
    return view
