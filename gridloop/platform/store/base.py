"""What every storage backend provides; the API, ingest and command dispatch use only this."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Protocol

from gridloop.platform.envelope import Event, Reading
from gridloop.platform.rollups import RollupBucket


def hash_key(api_key: str) -> str:
    """API keys are stored hashed; a leaked store does not leak keys."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return "glk_" + secrets.token_urlsafe(24)


# A command's status only moves forward (contracts.md §4): status -> the statuses it may follow. Several
# platform replicas (and a late or repeated response) may try any update in any order; the store applies
# only forward steps, atomically, so a late 'accepted' never overwrites 'executed' and a final status stays.
COMMAND_STEPS: dict[str, frozenset[str]] = {
    "pending": frozenset(),
    "sent": frozenset({"pending"}),
    "accepted": frozenset({"pending", "sent"}),
    "executed": frozenset({"pending", "sent", "accepted"}),
    "rejected": frozenset({"pending", "sent", "accepted"}),
    "failed": frozenset({"pending", "sent", "accepted"}),
    "expired": frozenset({"pending", "sent"}),  # once the device accepted it, its outcome is the device's to tell
}
FINAL = frozenset({"executed", "rejected", "failed", "expired"})


def command_step_allowed(current: str, new: str, same: bool = False) -> bool:
    """Whether a command in ``current`` may move to ``new``; ``same``: re-recording a non-final status too."""
    return current in COMMAND_STEPS.get(new, ()) or (same and current == new and current not in FINAL)


# device -> tenant look-ups are cached per process (ingest asks for every reading); a registry change made
# through another replica is seen here after at most this long. Writes check ownership in the store itself.
OWNER_CACHE_S = 5.0


@dataclass
class DeviceRecord:
    """A provisioned device of one tenant."""

    tenant: str
    id: str
    type: str
    phases: int = 1
    gateway: str | None = None
    asset: str | None = None
    status: str = "unknown"  # online / offline / unknown, from the retained status topic
    meta: dict = field(default_factory=dict)


@dataclass
class AssetRecord:
    """A person, house, location, substation or feeder that devices are assigned to."""

    tenant: str
    id: str
    kind: str
    name: str = ""
    parent: str | None = None


@dataclass
class CommandRecord:
    """A command and where it is in its lifecycle."""

    tenant: str
    id: str
    device: str
    name: str
    args: dict
    ts: int
    expires: int | None
    status: str = "pending"
    detail: str = ""
    updated: int = 0
    history: list = field(default_factory=list)  # [[status, ts_ms], ...]


@dataclass(frozen=True)
class StoredReading:
    """A reading as it comes back from the store."""

    ts: int
    seq: int | None
    q: dict[str, float]


class Store(Protocol):
    """Tenants, registry, readings, events, rejections and commands, all keyed by tenant."""

    # tenants
    def create_tenant(self, name: str) -> str: ...
    def tenant_of_key(self, api_key: str) -> str | None: ...
    def tenant_exists(self, name: str) -> bool: ...

    # registry
    def put_devices(self, devices: list[DeviceRecord]) -> None: ...
    def get_device(self, tenant: str, device: str) -> DeviceRecord | None: ...
    def list_devices(self, tenant: str) -> list[DeviceRecord]: ...
    def delete_device(self, tenant: str, device: str) -> bool: ...
    def owner_of(self, device: str) -> str | None: ...
    def set_device_status(self, tenant: str, device: str, status: str) -> None: ...
    def put_asset(self, asset: AssetRecord) -> None: ...
    def get_asset(self, tenant: str, asset: str) -> AssetRecord | None: ...
    def list_assets(self, tenant: str) -> list[AssetRecord]: ...

    # data
    def insert_readings(self, tenant: str, readings: list[Reading]) -> int: ...
    def insert_events(self, tenant: str, events: list[Event]) -> int: ...
    def add_rejected(self, tenant: str | None, topic: str, reason: str, payload: bytes) -> None: ...
    def query_readings(
        self, tenant: str, device: str, start: int | None, end: int | None, limit: int
    ) -> list[StoredReading]: ...
    def query_events(
        self, tenant: str, device: str, start: int | None, end: int | None, kind: str | None
    ) -> list[Event]: ...
    def count_readings(self, tenant: str) -> int: ...
    def count_rejected(self, tenant: str | None) -> int: ...
    def readings_per_device(self, tenant: str, start: int | None, end: int | None) -> dict[str, int]: ...
    def query_rollups(
        self, tenant: str, devices: list[str], quantity: str, resolution: str, start: int, end: int
    ) -> list[RollupBucket]:
        """Stored buckets of ``resolution`` (a key of rollups.RESOLUTIONS) with start in [start, end)."""
        ...

    # retention
    def apply_retention(
        self, tenant: str, raw_days: float | None = None, rollup_days: dict[str, float] | None = None,
        batch: int = 5000, now: int | None = None,
    ) -> dict[str, int]:
        """Delete old raw readings and old rollup buckets of one tenant in bounded batches; counts per kind."""
        ...

    # commands
    def put_command(self, command: CommandRecord) -> None: ...
    def get_command(self, tenant: str, command_id: str) -> CommandRecord | None: ...
    def update_command(
        self, tenant: str, command_id: str, status: str, detail: str, ts: int, *, expect_updated: int | None = None
    ) -> bool:
        """Move the command to ``status`` if that is a forward step (COMMAND_STEPS), atomically; True if it moved.

        ``expect_updated``: a compare-and-set, only if the command's ``updated`` is still that value (then
        re-recording the same status, a re-send, is allowed; ``updated`` becomes more than ``expect_updated``).
        """
        ...

    def open_commands(self) -> list[CommandRecord]: ...

    # coordination between platform replicas
    def acquire_lease(self, name: str, holder: str, ttl_ms: int, now: int | None = None) -> bool:
        """Take or renew the lease ``name`` for ``holder`` until now + ttl_ms, unless another holder's is unexpired."""
        ...

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up at once if ``holder`` has it (a graceful stop: another replica takes over)."""
        ...

    def close(self) -> None: ...
