"""Devices and assets in SQLite, both keyed by (tenant, id): two tenants may use the same device id."""

from __future__ import annotations

import orjson

from gridloop.platform.store.records import AssetRecord, DeviceRecord
from gridloop.platform.store.registry_cache import Registration
from gridloop.platform.store.sqlite.connection import SqliteBase


class SqliteRegistry(SqliteBase):
    """Devices and assets; (tenant, device) look-ups cached per process."""

    def put_devices(self, devices: list[DeviceRecord]) -> None:
        """Insert or update the tenant's devices (their status kept); ids are the tenant's own namespace."""
        rows = [
            (d.id, d.tenant, d.type, d.phases, d.gateway, d.asset, d.status, orjson.dumps(d.meta).decode())
            for d in devices
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO devices VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(tenant, id) DO UPDATE SET"
                    " type=excluded.type, phases=excluded.phases, gateway=excluded.gateway, asset=excluded.asset,"
                    " meta=excluded.meta",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")  # a failed batch must not leave the shared connection in a transaction
                raise
            for d in devices:
                self._registered.remember(d.tenant, d.id, Registration(d.gateway))

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

    def list_devices(self, tenant: str, after: str | None = None, limit: int | None = None) -> list[DeviceRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM devices WHERE tenant=? AND id>? ORDER BY id LIMIT ?",
                                    (tenant, after or "", -1 if limit is None else limit)).fetchall()
        return [self._device(r) for r in rows]

    def device_metas(self, tenant: str) -> list[tuple[str, str, str]]:
        with self._lock:
            return self._db.execute("SELECT id, type, meta FROM devices WHERE tenant=? ORDER BY id", (tenant,)
                                    ).fetchall()

    def devices_of_asset(self, tenant: str, asset: str) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT id FROM devices WHERE tenant=? AND asset=? ORDER BY id",
                                                   (tenant, asset))]

    def delete_device(self, tenant: str, device: str) -> bool:
        with self._lock:
            n = self._db.execute("DELETE FROM devices WHERE id=? AND tenant=?", (device, tenant)).rowcount
            self._registered.remember(tenant, device, None)
        return n > 0

    def is_registered(self, tenant: str, device: str) -> bool:
        return self.registration(tenant, device) is not None

    def registration(self, tenant: str, device: str) -> Registration | None:
        """The tenant's device as ingest checks it; cached (RegistryCache): asked for every device it sees."""
        return self._registered.lookup(tenant, device, lambda: self._load_registration(tenant, device))

    def _load_registration(self, tenant: str, device: str) -> Registration | None:
        with self._lock:
            row = self._db.execute("SELECT gateway FROM devices WHERE tenant=? AND id=?", (tenant, device)).fetchone()
        return None if row is None else Registration(row[0])

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

    def list_assets(self, tenant: str, after: str | None = None, limit: int | None = None) -> list[AssetRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM assets WHERE tenant=? AND id>? ORDER BY id LIMIT ?",
                                    (tenant, after or "", -1 if limit is None else limit)).fetchall()
        return [AssetRecord(*r) for r in rows]
