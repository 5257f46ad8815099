"""Typed scenario: what a researcher writes in YAML, checked before anything runs.

Durations are written with units (``"1d"``, ``"15min"``, ``"10s"``) and held as seconds;
nothing downstream parses strings.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, model_validator

from gridloop.scenario.grid_section import NAME_PATTERN, Battery, Grid, TapControl, _Strict  # noqa: F401

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds from a number (seconds) or a string like '15min', '1d', '10s'."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '15min', '1h' or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT_S[m.group(2) or "s"]
    else:
        raise ValueError(f"{value!r} is not a duration; write e.g. '15min', '1h', '1d' or seconds")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def parse_offset(value: object) -> float:
    """Seconds from the start of the run; like a duration, but zero is allowed."""
    if value in (0, "0"):
        return 0.0
    return parse_duration(value)


Duration = Annotated[float, BeforeValidator(parse_duration)]
Offset = Annotated[float, BeforeValidator(parse_offset)]


REDACTED = "<redacted>"  # what a secret shows as in files a run writes


class Clock(_Strict):
    """Simulated time: where it starts, how long, how big a step, and whether it is paced."""

    start: datetime = datetime.fromisoformat("2026-01-15T00:00:00+00:00")
    duration: Duration = 86400.0
    step: Duration = 60.0
    realtime: bool = False
    speed: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _step_fits(self) -> Clock:
        if self.step > self.duration:
            raise ValueError("clock.step is longer than clock.duration")
        if self.start.tzinfo is None:
            raise ValueError("clock.start needs a time zone, e.g. 2026-01-15T00:00:00+01:00")
        return self


class Households(_Strict):
    """The demand: which profile source, how many homes, how big."""

    source: Literal["synthetic", "simbench"] = Field(
        "synthetic", description="appliance-level synthetic homes, or SimBench's measured profiles")
    count: int | None = Field(None, ge=1, description="homes to keep; default all household loads")
    preset: Literal["default", "italian_family", "swedish_apartment"] = "default"
    annual_kwh: float | None = Field(None, gt=0, description="mean annual consumption per home (preset's if unset)")
    three_phase_share: float | None = Field(None, ge=0, le=1)
    pv_share: float = Field(0.0, ge=0, le=1, description="share of homes with rooftop PV (synthetic)")
    ev_share: float = Field(0.0, ge=0, le=1, description="share of homes charging an EV (synthetic)")
    heat_pump_share: float = Field(0.0, ge=0, le=1, description="share of homes heated by a heat pump (synthetic)")
    scale_spread: float = Field(0.25, ge=0, lt=1, description="simbench: relative std-dev of per-home scaling")


class CommLink(_Strict):
    """How readings travel from the meters to their DIA: a pilot technology with its gateways, or ideal."""

    technology: Literal["ideal", "rf_mesh", "plc_g3", "gprs", "home_4g", "wmbus"] = "ideal"
    profile: Literal["lab", "field"] = Field("field", description="rf_mesh: lab-like or field (concrete) losses")
    gateways: int = Field(1, ge=1, description="cells the meters are spread over, round robin")
    buffering: bool = Field(True, description="gateways store and forward what the link could not carry")
    buffer_readings: int = Field(100_000, ge=1, description="store-and-forward capacity per gateway")
    bytes_per_reading: int = Field(100, ge=1)


class UtilityMeters(_Strict):
    """Multi-utility pilot meters: district heating (Turin's 5-min scheme), water (wM-Bus), gas."""

    heat_meters: int = Field(0, ge=0)
    heat_interval: Duration = 300.0
    heat_design_kw: float = Field(60.0, gt=0, description="mean design heat load per building")
    water_meters: int = Field(0, ge=0)
    water_interval: Duration = 900.0
    gas_meters: int = Field(0, ge=0)
    gas_interval: Duration = 900.0
    gas_design_kw: float = Field(6.0, gt=0, description="mean design heat load of a gas-heated home (boiler for "
                                 "space heating and hot water, plus a gas hob)")
    link: CommLink = Field(CommLink(), description="how heat, water and gas meters reach the DIA (the pilots' "
                           "wM-Bus: wmbus); default ideal: straight to the DIA")


class Meters(_Strict):
    """Virtual electricity meters (one per household load) and the utility meters beside them."""

    type: Literal["residential"] = "residential"
    interval: Duration = 900.0
    dia_batch: int = Field(500, ge=1, description="readings per telemetry envelope")
    dia_buffer_readings: int = Field(1_000_000, ge=0, description="held while the broker is away; 0 drops them")
    end_to_end_delivery: bool = Field(
        True, description="a buffering DIA keeps each envelope (in an outbox file in the run directory) until the "
                          "platform acknowledges it as stored, and resends what the broker lost")
    link: CommLink = CommLink()
    link_1hz: CommLink | None = Field(None, description="how the 1 Hz meters' readings reach the DIA (e.g. a home "
                                      "gateway over 3G/4G: home_4g); default: the link section's")
    home_1hz: int | None = Field(None, ge=0, description="homes with a 1 Hz disaggregation meter (default: the "
                                 "grid's own, e.g. Turin's; else none)")
    events: bool = Field(True, description="EN 50160 voltage events, outages and last gasps on the events topic")
    utility: UtilityMeters = UtilityMeters()
    blink_detectors: int = Field(0, ge=0, description="homes whose meter LED carries a pulse reader (1 imp/Wh); "
                                 "its readings travel the home gateway's link: link_1hz, else link")
    substation_link: CommLink = Field(CommLink(), description="how the transformers' meters reach the DIA; default "
                                      "ideal (a wired or fibre connection)")


class Platform(_Strict):
    """Where readings go: embedded broker and store by default, or external URIs."""

    tenant: str = Field("demo", pattern=NAME_PATTERN)
    broker: str | None = None
    store: str | None = None
    api_url: str | None = None
    api_key: str | None = None
    dia_id: str = Field("dia-1", pattern=NAME_PATTERN)
    mqtt_username: str | None = Field(None, description="the tenant's MQTT account (gridloop tenant create)")
    mqtt_password: str | None = None
    tls_ca: str | None = Field(None, description="mqtts://: CA file that signed the broker's certificate")
    tls_cert: str | None = Field(None, description="mqtts://: client certificate for mutual authentication")
    tls_key: str | None = None

    @model_validator(mode="after")
    def _external_api(self) -> Platform:
        if (self.api_url is None) != (self.api_key is None):
            raise ValueError("platform.api_url and platform.api_key go together")
        for name in ("broker",):
            uri = getattr(self, name)
            if uri is not None and not re.match(r"^mqtts?://[^:/]+:\d+/?$", uri):
                raise ValueError(f"platform.{name} must look like mqtt://host:port, got {uri!r}")
        if self.store is not None and not re.match(r"^(sqlite:///.+|mongodb://.+)$", self.store):
            raise ValueError("platform.store must be sqlite:///path or mongodb://host:port/db")
        return self


class _Event(_Strict):
    """What every scenario event has: when, and in a multi-substation run, which substation it happens in."""

    at: Offset
    substation: int | None = Field(None, ge=1, description=(
        "grid.substations > 1: the substation (1..N) whose grid, devices or link the event acts on"))


class CommandEvent(_Event):
    """At simulated time ``at``, send a command to a device through the platform's REST API."""

    command: str = Field(pattern=r"^[a-z]+\.[a-z_]+$")
    device: str = Field(pattern=NAME_PATTERN)
    args: dict[str, float | int | str] = Field(default_factory=dict)


class LineFault(_Strict):
    """A short circuit on a line; protection clears it, the faulted line stays faulted (ground truth)."""

    line: int = Field(ge=0, description="net.line index")
    position: float = Field(0.5, ge=0, le=1, description="0 = from bus, 1 = to bus")
    r_ohm: float = Field(0.0, ge=0, description="fault resistance")
    kind: Literal["3ph", "2ph", "1ph"] = "3ph"


class FaultEvent(_Event):
    """At ``at``, a line fault happens."""

    fault: LineFault


class LinkOutage(_Strict):
    """The meters' communication link (all gateways) is down for a while."""

    duration: Duration


class LinkOutageEvent(_Event):
    link_outage: LinkOutage


class LinkDegradation(_Strict):
    """The meters' link loses an extra share of what it carried, for a while (interference, a bad antenna)."""

    extra_loss: float = Field(gt=0, le=1)
    duration: Duration


class LinkDegradationEvent(_Event):
    link_degradation: LinkDegradation


class EquipmentOutage(_Strict):
    """A line or transformer out of service for a while (maintenance, a failure without a short circuit)."""

    element: Literal["line", "trafo"]
    index: int = Field(ge=0)
    duration: Duration


class EquipmentOutageEvent(_Event):
    outage: EquipmentOutage


class BrokerOutage(_Strict):
    """The embedded MQTT broker stops for a while (persistent sessions survive, as on a real restart)."""

    duration: Duration


class BrokerOutageEvent(_Event):
    broker_outage: BrokerOutage


class MeterFault(_Strict):
    """A faulty meter: its energy register sticks, or its clock drifts (ppm) from then on."""

    meter: str = Field(pattern=NAME_PATTERN)
    kind: Literal["stuck_register", "clock_drift"]
    drift_ppm: float = Field(500.0, description="clock_drift: how fast the meter's clock runs off")


class MeterFaultEvent(_Event):
    meter_fault: MeterFault


_EVENT_KEYS = {"fault": "fault", "link_outage": "link_outage", "link_degradation": "link_degradation",
               "outage": "outage",
               "broker_outage": "broker_outage", "meter_fault": "meter_fault"}
_EVENT_TYPES = {FaultEvent: "fault", LinkOutageEvent: "link_outage", LinkDegradationEvent: "link_degradation",
                EquipmentOutageEvent: "outage",
                BrokerOutageEvent: "broker_outage", MeterFaultEvent: "meter_fault"}


def _event_kind(data: object) -> str:
    if isinstance(data, dict):
        return next((tag for key, tag in _EVENT_KEYS.items() if key in data), "command")
    return _EVENT_TYPES.get(type(data), "command")


ScenarioEvent = Annotated[
    Annotated[CommandEvent, Tag("command")] | Annotated[FaultEvent, Tag("fault")]
    | Annotated[LinkOutageEvent, Tag("link_outage")] | Annotated[LinkDegradationEvent, Tag("link_degradation")]
    | Annotated[EquipmentOutageEvent, Tag("outage")]
    | Annotated[BrokerOutageEvent, Tag("broker_outage")] | Annotated[MeterFaultEvent, Tag("meter_fault")],
    Discriminator(_event_kind),
]


class Service(_Strict):
    """A reference service from gridloop.services, run as its own process against the platform."""

    name: Literal["demand_response", "storage_peak_shaving", "fault_location"]
    args: dict[str, float | int | str] = Field(default_factory=dict, description="its command-line options")


class Kpis(_Strict):
    """Ground truth the run is scored against."""

    transformer: int = Field(0, ge=0, description="position in net.trafo of the transformer scored")
    transformer_limit_kw: float | None = Field(None, gt=0)


class Outputs(_Strict):
    """What the run directory gets besides summary.json."""

    dir: str = "runs/{scenario}"
    series: bool = True
    plots: bool = True
    progress: bool = True


class Scenario(_Strict):
    """A whole scenario file."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    seed: int = Field(1, ge=0)
    clock: Clock = Clock()
    grid: Grid = Grid()
    households: Households = Households()
    meters: Meters = Meters()
    platform: Platform = Platform()
    events: list[ScenarioEvent] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    kpis: Kpis = Kpis()
    outputs: Outputs = Outputs()

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.meters.interval < self.clock.step:
            raise ValueError("meters.interval is shorter than clock.step; a meter samples at most once a step")
        u = self.meters.utility
        for name, interval in (("meters.interval", self.meters.interval), ("meters.utility.heat_interval",
                               u.heat_interval), ("meters.utility.water_interval", u.water_interval),
                               ("meters.utility.gas_interval", u.gas_interval)):
            if interval % self.clock.step:
                raise ValueError(f"{name} must be a whole number of clock.step")
        if self.services and not self.clock.realtime:
            raise ValueError("services react to the platform in real time: set clock.realtime: true (any speed)")
        self._events_have_substations()
        if self.grid.coupling is not None:
            for name, value in (("events", self.events), ("services", self.services),
                                ("kpis.transformer_limit_kw", self.kpis.transformer_limit_kw)):
                if value:
                    raise ValueError(f"grid.coupling: helics does not run {name} yet (its partitions solve parts "
                                     f"of the grid): leave {name} unset with grid.coupling")
        for i, event in enumerate(self.events):
            if event.at > self.clock.duration:
                raise ValueError(f"events[{i}].at is after the end of the run (clock.duration)")
        return self

    def _events_have_substations(self) -> None:
        """With several substations each event names the one it happens in; the shared broker is not one's."""
        count = self.grid.copies
        for i, event in enumerate(self.events):
            where = f"events[{i}].substation"
            if count == 1 and event.substation not in (None, 1):
                whole = ("a district is one net (its grid.substations are LV substations of it, not copies): "
                         "leave it unset" if self.grid.is_district else "the run has one substation "
                         f"(grid.substations is 1), not {event.substation}")
                raise ValueError(f"{where}: {whole}")
            if count > 1 and isinstance(event, BrokerOutageEvent):
                raise ValueError(f"events[{i}]: broker_outage stops the broker every substation shares: run it "
                                 "with grid.substations 1")
            if count > 1 and event.substation is None:
                raise ValueError(f"{where}: grid.substations is {count}: name the substation (1..{count}) "
                                 "the event happens in")
            if count > 1 and event.substation > count:
                raise ValueError(f"{where}: {event.substation} is not one of the run's substations (1..{count})")

    def redacted_json(self) -> str:
        """The scenario as run, for the run directory, without its secrets (API key, MQTT and store passwords)."""
        doc = self.model_dump(mode="json")
        platform = doc["platform"]
        for key in ("api_key", "mqtt_password"):
            if platform.get(key):
                platform[key] = REDACTED
        if platform.get("store"):
            platform["store"] = re.sub(r"//([^:/@]+):[^@]*@", rf"//\1:{REDACTED}@", platform["store"])
        return json.dumps(doc, indent=2)
