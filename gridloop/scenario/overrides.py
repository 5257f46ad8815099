"""A run's command-line overrides of its scenario: seed, duration, real time, services, partition, tenant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gridloop.scenario.model import Scenario


class RunRefused(ValueError):
    """The run cannot start as asked (its options, directory or key): said in one line, never a traceback."""


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
    view: bool = False  # serve the live view on loopback while the run steps
    view_port: int = 0  # 0: a free port
    view_key: str | None = None  # the page may send commands when it presents this key
    tenant: str | None = None  # run as this tenant of the platform (its topics, devices and key)
    mqtt_username: str | None = None  # the tenant's broker account
    mqtt_password: str | None = None
    helics_broker: str | None = None  # grid.coupling: the run's HELICS broker, 127.0.0.1:PORT


def resolve(scenario: Scenario, options: RunOptions) -> Scenario:
    """The scenario with the command line's overrides."""
    s = scenario.model_copy(deep=True)
    if options.seed is not None:
        s.seed = options.seed
    if options.until is not None:
        s.clock.duration = min(options.until, s.clock.duration) if options.until > 0 else s.clock.duration
    for name, section, attr in (("realtime", s.clock, "realtime"), ("speed", s.clock, "speed"),
                                ("broker", s.platform, "broker"), ("store", s.platform, "store"),
                                ("progress", s.outputs, "progress")):
        if getattr(options, name) is not None:
            setattr(section, attr, getattr(options, name))
    if options.api_url is not None:
        s.platform.api_url, s.platform.api_key = options.api_url, options.api_key
    if options.tenant is not None:
        s.platform.tenant = options.tenant
    if options.mqtt_username is not None:
        s.platform.mqtt_username, s.platform.mqtt_password = options.mqtt_username, options.mqtt_password
    if options.partition is not None and options.partition[1] > 1:
        if s.platform.broker is None or s.platform.api_url is None:
            raise RunRefused("a partition of a run needs the shared broker and platform: --broker and --api-url")
        if s.platform.dia_id == "dia-1" and s.grid.copies == 1:  # several substations: a DIA each
            s.platform.dia_id = f"dia-{options.partition[0] + 1}"
    return s
