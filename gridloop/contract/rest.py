"""Typed request and response bodies of the REST API (they make the OpenAPI document)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, model_validator

from gridloop.contract.bounds import DURATION_MAX_S, SEQ_MAX, TS_MAX_MS, TS_MIN_MS
from gridloop.contract.commands import CommandStatus, InvalidCommand, check_args
from gridloop.contract.devices import AssetKind, DeviceType, parse_meta
from gridloop.contract.events import EventType, Severity
from gridloop.contract.topics import NAME_PATTERN as NAME

API_PREFIX = "/api/v1"
MetaValue = str | int | float | bool | None
Meta = Annotated[dict[Annotated[str, Field(max_length=64)], MetaValue], Field(max_length=64)]
EpochMs = Annotated[int, Field(ge=TS_MIN_MS, lt=TS_MAX_MS, description="epoch ms UTC")]


class Health(BaseModel):
    """Liveness, and whether ingest can store: ``degraded`` while the store is unavailable (nothing is
    acknowledged to devices then; they keep their readings and the broker its backlog)."""

    status: Literal["ok", "degraded"] = "ok"
    store_available: bool = True


class StoreOutage(StrEnum):
    """Why the API answered 503 (``Unavailable.reason``): retry after ``Retry-After`` seconds."""

    UNAVAILABLE = "store_unavailable"  # unreachable, locked, full
    WRITE_LOCK_LOST = "write_lock_lost"  # another replica took the store's write lock over during this write
    WRITE_LOCK_BUSY = "write_lock_busy"  # another replica held the store's write lock for too long


class Unavailable(BaseModel):
    """The body of a 503: the store is unavailable for now; nothing of the request was acknowledged."""

    detail: str
    reason: StoreOutage


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME)


class TenantCreated(BaseModel):
    tenant: str
    api_key: str


class MqttAccount(BaseModel):
    """A tenant's broker account, as `gridloop tenant create` made it."""

    username: str
    password: str
    topic_prefix: str
    broker: str | None = Field(None, description="the running broker the account was added to")
    accounts_file: str | None = Field(None, description="or the accounts file the broker reads when it starts")


class TenantCredentials(TenantCreated):
    """What `gridloop tenant create` prints (or writes with ``--out``, mode 0600) and `gridloop run --credentials`
    reads: the tenant's API key and its broker account."""

    mqtt: MqttAccount


class DeviceIn(BaseModel):
    """A device to register; ``meta`` is checked against the device kind's typed meta (devices.META_MODELS)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    id: str = Field(pattern=NAME)
    type: DeviceType
    phases: Literal[1, 3] = 1
    gateway: str | None = Field(None, pattern=NAME)
    asset: str | None = Field(None, pattern=NAME)
    meta: Meta = Field(default_factory=dict)

    @model_validator(mode="after")
    def _typed_meta(self) -> Self:
        parse_meta(self.type, self.meta)
        return self


class DevicePatch(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    type: DeviceType | None = None
    phases: Literal[1, 3] | None = None
    gateway: str | None = Field(None, pattern=NAME)
    asset: str | None = Field(None, pattern=NAME)
    meta: Meta | None = None


class Device(DeviceIn):
    status: Literal["online", "offline", "unknown"] = Field(
        "unknown", description="the device's last status-topic payload (DeviceStatus), or unknown")


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
    seq: int | None = Field(description=f"per-meter counter, 0 to {SEQ_MAX}")
    q: dict[str, float]


class Readings(BaseModel):
    device: str
    readings: list[ReadingOut]
    next_start: int | None = Field(None, description="more readings may follow: ask again with start=next_start "
                                                     "(epoch ms); absent when the span holds no more")


class EventOut(BaseModel):
    ts: int
    type: EventType
    severity: Severity
    data: dict


class Events(BaseModel):
    device: str
    events: list[EventOut]
    next_start: int | None = Field(None, description="more events may follow: ask again with start=next_start "
                                                     "(epoch ms); absent when the span holds no more")


class CommandIn(BaseModel):
    """A command to send; its name and arguments are checked against the contract (commands.COMMAND_ARGS)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str = Field(examples=["switch.open"], max_length=64)
    args: dict[str, StrictInt | StrictFloat] = Field(default_factory=dict, max_length=16)
    expires: EpochMs | None = Field(None, description="epoch ms after which the command must not run")
    expires_in_s: float | None = Field(None, gt=0, le=DURATION_MAX_S,
                                       description="alternative to expires: seconds from now")

    @model_validator(mode="after")
    def _known_command(self) -> Self:
        try:
            check_args(self.name, self.args)
        except InvalidCommand as exc:
            raise ValueError(str(exc)) from None
        return self


class CommandAccepted(BaseModel):
    id: str


class Command(BaseModel):
    id: str
    device: str
    name: str
    args: dict
    ts: int
    expires: int | None
    status: CommandStatus
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
    """One tenant's counts: nothing of another tenant's traffic shows here."""

    tenant: str
    readings_stored: int
    rejected: int
    ingest: dict[str, int] = Field(description="the tenant's share of this replica's ingest counters: readings "
                                               "received, stored, duplicate, events stored, rejected")
    instance: str | None = Field(None, description="the platform replica that answered (its ingest counters)")


class PlatformMetrics(BaseModel):
    """A replica's counters over all tenants (``/api/v1/admin/metrics``, the admin key only)."""

    instance: str | None = None
    ingest: dict[str, int] = Field(description="this replica's ingest workers summed: messages, readings, "
                                               "rejections, quarantined, store outages, degraded, queue depth")
    commands: dict[str, int] = Field(
        default_factory=dict,
        description="this replica's command dispatch: responses handled, commands (re)sent on reconnect, "
                    "leader (1 if it holds the lease to re-send sent commands and expire stale ones), "
                    "disconnects from the broker")
    tenants: int = Field(0, description="tenants this replica has ingested for")


class AggregateBucket(BaseModel):
    start: int = Field(description="bucket start, epoch ms UTC (buckets are clock-aligned, days start 00:00 UTC; "
                                   "with tz, at local midnight)")
    start_iso: str = Field(description="bucket start, ISO 8601 UTC (with tz: local time with its offset)")
    end: int | None = Field(None, description="bucket end, epoch ms: with tz or interval 1mo, whose buckets differ "
                                              "in length (a 23 h or 25 h day when daylight saving time changes)")
    value: float = Field(description="the requested aggregate over the bucket")
    count: int = Field(description="number of readings the bucket holds (over all devices for an asset)")


class Aggregates(BaseModel):
    device: str | None = None
    asset: str | None = None
    devices: list[str] = Field(description="devices the aggregate is computed over")
    quantity: str
    interval: Literal["1m", "5m", "15m", "1h", "1d", "1mo"]
    tz: str | None = Field(None, description="IANA time zone of the days (months) with interval 1d or 1mo")
    agg: Literal["mean", "min", "max", "sum", "last", "count"]
    start: int = Field(description="first bucket start considered (start aligned down to the interval)")
    end: int
    as_of: int = Field(description="epoch ms of the stored data this answer reflects (at most the cache bound old)")
    buckets: list[AggregateBucket]
