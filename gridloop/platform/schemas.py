"""Typed request and response bodies of the REST API (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
DeviceType = Literal[
    "electricity_meter", "substation_meter", "home_meter", "blink_detector", "heat_meter", "water_meter",
    "gas_meter", "gateway", "dia", "switch", "battery", "flexible_load", "transformer",
]
AssetKind = Literal["person", "house", "location", "substation", "feeder"]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME)


class TenantCreated(BaseModel):
    tenant: str
    api_key: str


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=NAME)
    type: DeviceType
    phases: Literal[1, 3] = 1
    gateway: str | None = Field(None, pattern=NAME)
    asset: str | None = Field(None, pattern=NAME)
    meta: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class DevicePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: DeviceType | None = None
    phases: Literal[1, 3] | None = None
    gateway: str | None = Field(None, pattern=NAME)
    asset: str | None = Field(None, pattern=NAME)
    meta: dict[str, str | int | float | bool | None] | None = None


class Device(DeviceIn):
    status: Literal["online", "offline", "unknown"] = "unknown"


class DevicesCreated(BaseModel):
    created: int


class AssetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=NAME)
    kind: AssetKind
    name: str = ""
    parent: str | None = Field(None, pattern=NAME)


class Asset(AssetIn):
    devices: list[str] = Field(default_factory=list)


class ReadingOut(BaseModel):
    ts: int = Field(description="measurement instant, epoch ms UTC")
    seq: int | None
    q: dict[str, float]


class Readings(BaseModel):
    device: str
    readings: list[ReadingOut]


class EventOut(BaseModel):
    ts: int
    type: str
    severity: str
    data: dict


class Events(BaseModel):
    device: str
    events: list[EventOut]


class CommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(examples=["switch.open"])
    args: dict[str, float | int] = Field(default_factory=dict)
    expires: int | None = Field(None, description="epoch ms after which the command must not run")
    expires_in_s: float | None = Field(None, gt=0, description="alternative to expires: seconds from now")


class CommandAccepted(BaseModel):
    id: str


class Command(BaseModel):
    id: str
    device: str
    name: str
    args: dict
    ts: int
    expires: int | None
    status: Literal["pending", "sent", "accepted", "executed", "rejected", "failed", "expired"]
    detail: str
    history: list[tuple[str, int]]


class DeviceCompleteness(BaseModel):
    device: str
    expected: int
    received: int
    ratio: float


class Completeness(BaseModel):
    start: int
    end: int
    devices: list[DeviceCompleteness]


class Metrics(BaseModel):
    tenant: str
    readings_stored: int
    rejected: int
    ingest: dict[str, int] = Field(description="counters of this replica's ingest workers, all tenants")
    instance: str | None = Field(None, description="the platform replica that answered (its ingest counters)")
    commands: dict[str, int] = Field(
        default_factory=dict,
        description="this replica's command dispatch: responses handled, commands (re)sent on reconnect, "
                    "leader (1 if it holds the lease to re-send sent commands and expire stale ones), "
                    "disconnects from the broker")


class AggregateBucket(BaseModel):
    start: int = Field(description="bucket start, epoch ms UTC (buckets are clock-aligned, days start 00:00 UTC)")
    start_iso: str = Field(description="bucket start, ISO 8601 UTC")
    value: float = Field(description="the requested aggregate over the bucket")
    count: int = Field(description="number of readings the bucket holds (over all devices for an asset)")


class Aggregates(BaseModel):
    device: str | None = None
    asset: str | None = None
    devices: list[str] = Field(description="devices the aggregate is computed over")
    quantity: str
    interval: Literal["1m", "5m", "15m", "1h", "1d"]
    agg: Literal["mean", "min", "max", "sum", "last", "count"]
    start: int = Field(description="first bucket start considered (start aligned down to the interval)")
    end: int
    as_of: int = Field(description="epoch ms of the stored data this answer reflects (at most the cache bound old)")
    buckets: list[AggregateBucket]
