"""What the storage backends provide, as one protocol per concern; the API, ingest, command dispatch and
retention each use only this. ``Store`` is all of them, for code that needs the whole store."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from gridloop.platform.envelope import Event, Reading
from gridloop.platform.rollups import RollupBucket, RollupRow
from gridloop.platform.store.records import (
    COMMAND_STEPS,
    FINAL,
    OWNER_CACHE_S,
    AssetRecord,
    CommandRecord,
    DeviceRecord,
    StoredReading,
    command_step_allowed,
    hash_key,
    new_api_key,
)
from gridloop.platform.store.registry_cache import Registration


class TenantStore(Protocol):
    """Tenants and their (hashed) API keys."""

    def create_tenant(self, name: str) -> str:
        """Add a tenant; its new API key (stored hashed). ValueError if the name is taken."""
        ...

    def tenant_of_key(self, api_key: str) -> str | None: ...
    def tenant_exists(self, name: str) -> bool: ...


class RegistryStore(Protocol):
    """Devices and assets of each tenant, keyed by (tenant, id): two tenants may both have a device ``m00001``."""

    def put_devices(self, devices: list[DeviceRecord]) -> None:
        """Insert or update devices (keeping their status)."""
        ...

    def get_device(self, tenant: str, device: str) -> DeviceRecord | None: ...
    def list_devices(self, tenant: str, after: str | None = None, limit: int | None = None) -> list[DeviceRecord]:
        """The tenant's devices by id, those after ``after``, at most ``limit`` (None: all)."""
        ...
    def device_metas(self, tenant: str) -> list[tuple[str, str, str]]:
        """(id, type, meta as its stored JSON text) of each of the tenant's devices, by id: for callers that need
        only these (completeness), without building a record per device."""
        ...
    def devices_of_asset(self, tenant: str, asset: str) -> list[str]:
        """The ids of the tenant's devices assigned to ``asset``, by id (an asset's aggregates), without building a
        record per device of the tenant."""
        ...
    def delete_device(self, tenant: str, device: str) -> bool: ...

    def is_registered(self, tenant: str, device: str) -> bool: ...

    def registration(self, tenant: str, device: str) -> Registration | None:
        """The tenant's device (its gateway), or None; cached at most OWNER_CACHE_S (a change through another
        replica shows by then)."""
        ...

    def set_device_status(self, tenant: str, device: str, status: str) -> None: ...
    def put_asset(self, asset: AssetRecord) -> None: ...
    def get_asset(self, tenant: str, asset: str) -> AssetRecord | None: ...
    def list_assets(self, tenant: str, after: str | None = None, limit: int | None = None) -> list[AssetRecord]: ...


class ReadingStore(Protocol):
    """What ingest writes (readings, events, rejected messages) and the raw data the API reads back."""

    def insert_readings(self, tenant: str, readings: list[Reading]) -> int:
        """Store readings not stored yet (by (dev, ts)) and fold exactly those into the rollups; how many."""
        ...

    def insert_events(self, tenant: str, events: list[Event]) -> int: ...
    def add_rejected(self, tenant: str | None, topic: str, reason: str, payload: bytes) -> None: ...
    def add_rejected_many(self, rows: list[tuple[str | None, str, str, bytes]]) -> None:
        """(tenant, topic, reason, payload) of several rejected messages, written at once."""
        ...
    def query_readings(
        self, tenant: str, device: str, start: int | None, end: int | None, limit: int
    ) -> list[StoredReading]: ...
    def query_events(
        self, tenant: str, device: str, start: int | None, end: int | None, kind: str | None, limit: int | None = None
    ) -> list[Event]:
        """Events in [start, end) by (ts, type), at most ``limit`` (None: all)."""
        ...
    def count_readings(self, tenant: str) -> int: ...
    def count_rejected(self, tenant: str | None) -> int: ...
    def readings_per_device(self, tenant: str, start: int | None, end: int | None) -> dict[str, int]: ...


class RollupStore(Protocol):
    """Clock-aligned rollup buckets (written by insert_readings), their retention and a bulk restore."""

    def query_rollups(
        self, tenant: str, devices: list[str], quantity: str, resolution: str, start: int, end: int
    ) -> list[RollupBucket]:
        """Stored buckets of ``resolution`` (a key of rollups.RESOLUTIONS) with start in [start, end)."""
        ...

    def restore_rollups(self, rows: Iterable[RollupRow]) -> int:
        """Fold buckets computed elsewhere (a restore of past data: rollups.RollupRow, width in ms) into the stored
        ones exactly as ingest folds its own; rows in key order write fastest. How many rows were given."""
        ...

    def materialize_rollups(self, tenant: str, upto: int) -> int:
        """Fold the readings older than ``upto`` not folded yet into the buckets (SQLite defers readings past its
        rollup mark; query_rollups adds them meanwhile). How many readings were folded."""
        ...

    def count_rollups(self, tenant: str) -> int:
        """Stored buckets of the tenant: one per device, quantity, resolution and bucket start."""
        ...

    def apply_retention(
        self, tenant: str, raw_days: float | None = None, rollup_days: dict[str, float] | None = None,
        batch: int = 5000, now: int | None = None,
    ) -> dict[str, int]:
        """Delete old raw readings and old rollup buckets of one tenant in bounded batches; counts per kind."""
        ...


class CommandStore(Protocol):
    """Commands and their status lifecycle (COMMAND_STEPS)."""

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


class LeaseStore(Protocol):
    """Coordination between platform replicas."""

    def acquire_lease(self, name: str, holder: str, ttl_ms: int, now: int | None = None) -> bool:
        """Take or renew the lease ``name`` for ``holder`` until now + ttl_ms, unless another holder's is unexpired."""
        ...

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up at once if ``holder`` has it (a graceful stop: another replica takes over)."""
        ...


class Store(TenantStore, RegistryStore, ReadingStore, RollupStore, CommandStore, LeaseStore, Protocol):
    """Tenants, registry, readings, events, rejections, rollups, commands and leases, all keyed by tenant."""

    def close(self) -> None: ...


__all__ = [
    "COMMAND_STEPS", "FINAL", "OWNER_CACHE_S", "AssetRecord", "CommandRecord", "CommandStore", "DeviceRecord",
    "LeaseStore", "ReadingStore", "RegistryStore", "RollupStore", "Store", "StoredReading", "TenantStore",
    "command_step_allowed", "hash_key", "new_api_key",
]
