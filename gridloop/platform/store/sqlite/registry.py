"""Devices and assets in SQLite; device ownership is checked inside the write transaction."""

from __future__ import annotations

import time

import orjson

from gridloop.platform.store.records import OWNER_CACHE_S, AssetRecord, DeviceRecord
from gridloop.platform.store.sqlite.connection import SqliteBase


class SqliteRegistry(SqliteBase):
    """Devices and assets; device -> tenant look-ups cached per process."""

    def put_devices(self, devices: list[DeviceRecord]) -> None:
        rows = [
            (d.id, d.tenant, d.type, d.phases, d.gateway, d.asset, d.status, orjson.dumps(d.meta).decode())
            for d in devices
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # the ownership check and the insert are one step for all replicas
            try:
                taken = self._taken_by_other_tenant(devices)
                if taken:
                    raise ValueError(f"device id(s) already used by another tenant: {', '.join(taken[:5])}")
                self._db.executemany(
                    "INSERT INTO devices VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET type=excluded.type,"
                    " phases=excluded.phases, gateway=excluded.gateway, asset=excluded.asset, meta=excluded.meta"
                    " WHERE devices.tenant=excluded.tenant",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")  # a failed batch must not leave the shared connection in a transaction
                raise
            now = time.monotonic()
            for d in devices:
                self._owners[d.id] = (d.tenant, now)

    def _taken_by_other_tenant(self, devices: list[DeviceRecord]) -> list[str]:
        """Ids owned by another tenant, read from the store (not the cache: another replica may have changed it)."""
        taken = []
        for d in devices:
            row = self._db.execute("SELECT tenant FROM devices WHERE id=?", (d.id,)).fetchone()
            if row is not None and row[0] != d.tenant:
                taken.append(d.id)
        return taken

    @staticmethod
    def _device(row: tuple) -> DeviceRecord:
        return DeviceRecord(
            id=row[0], tenant=row[1], type=row[2], phases=row[3], gateway=row[4], asset=row[5],
            status=row[6], meta=orjson.loads(row[7]),
        )

    def get_device(self, tenant: str, device: str) -> DeviceRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM devices WHERE id=? AND tenant=?", (device, tenant)).fetchone()
        return self._device(row) if row else None

    def list_devices(self, tenant: str) -> list[DeviceRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM devices WHERE tenant=? ORDER BY id", (tenant,)).fetchall()
        return [self._device(r) for r in rows]

    def delete_device(self, tenant: str, device: str) -> bool:
        with self._lock:
            n = self._db.execute("DELETE FROM devices WHERE id=? AND tenant=?", (device, tenant)).rowcount
            self._owners.pop(device, None)
        return n > 0

    def owner_of(self, device: str) -> str | None:
        """The device's tenant; cached at most OWNER_CACHE_S (a change through another replica shows by then)."""
        cached = self._owners.get(device)
        now = time.monotonic()
        if cached is not None and now - cached[1] < OWNER_CACHE_S:
            return cached[0]
        with self._lock:
            row = self._db.execute("SELECT tenant FROM devices WHERE id=?", (device,)).fetchone()
        if row is None:
            self._owners.pop(device, None)
            return None
        self._owners[device] = (row[0], now)
        return row[0]

    def set_device_status(self, tenant: str, device: str, status: str) -> None:
        with self._lock:
            self._db.execute("UPDATE devices SET status=? WHERE id=? AND tenant=?", (status, device, tenant))

    def put_asset(self, asset: AssetRecord) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO assets VALUES (?,?,?,?,?)",
                (asset.tenant, asset.id, asset.kind, asset.name, asset.parent),
            )

    def get_asset(self, tenant: str, asset: str) -> AssetRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM assets WHERE tenant=? AND id=?", (tenant, asset)).fetchone()
        return AssetRecord(*row) if row else None

    def list_assets(self, tenant: str) -> list[AssetRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM assets WHERE tenant=? ORDER BY id", (tenant,)).fetchall()
        return [AssetRecord(*r) for r in rows]
