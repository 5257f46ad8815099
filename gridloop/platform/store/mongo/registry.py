"""Devices and assets in MongoDB, both keyed by (tenant, id): two tenants may use the same device id."""

from __future__ import annotations

import orjson

from gridloop.platform.store.mongo.connection import MongoBase
from gridloop.platform.store.records import AssetRecord, DeviceRecord
from gridloop.platform.store.registry_cache import Registration


def device_key(tenant: str, device: str) -> str:
    """A device document's _id: ids are scoped per tenant."""
    return f"{tenant}|{device}"


class MongoRegistry(MongoBase):
    """Devices (_id tenant|device) and assets (_id tenant|asset); (tenant, device) look-ups cached per process."""

    def put_devices(self, devices: list[DeviceRecord]) -> None:
        """Insert or update the tenant's devices, keeping the status of known ones."""
        with self._writing():
            fields = {device_key(d.tenant, d.id): {
                "tenant": d.tenant, "id": d.id, "type": d.type, "phases": d.phases, "gateway": d.gateway,
                "asset": d.asset, "meta": orjson.dumps(d.meta).decode()} for d in devices}
            known = {doc["_id"] for doc in self.db.devices.find({"_id": {"$in": list(fields)}}, {"_id": 1})}
            fresh = [{"_id": key, **f, "status": d.status}
                     for (key, f), d in zip(fields.items(), devices, strict=True) if key not in known]
            if fresh:  # new devices in bulk (cheap on FerretDB); one created meanwhile by a replica is updated below
                self._insert("devices", fresh)
            self._update("devices", [{"q": {"_id": key}, "u": {"$set": f}, "upsert": True}
                                     for key, f in fields.items() if key in known])
            for d in devices:
                self._registered.remember(d.tenant, d.id, Registration(d.gateway))

    @staticmethod
    def _device(doc: dict) -> DeviceRecord:
        return DeviceRecord(
            tenant=doc["tenant"], id=doc["id"], type=doc["type"], phases=doc["phases"], gateway=doc.get("gateway"),
            asset=doc.get("asset"), status=doc.get("status", "unknown"), meta=orjson.loads(doc.get("meta", "{}")),
        )

    def get_device(self, tenant: str, device: str) -> DeviceRecord | None:
        doc = self.db.devices.find_one({"_id": device_key(tenant, device)})
        return self._device(doc) if doc else None

    def list_devices(self, tenant: str, after: str | None = None, limit: int | None = None) -> list[DeviceRecord]:
        docs = self.db.devices.find({"tenant": tenant, "id": {"$gt": after or ""}}).sort("id", 1).limit(limit or 0)
        return [self._device(d) for d in docs]

    def device_metas(self, tenant: str) -> list[tuple[str, str, str]]:
        docs = self.db.devices.find({"tenant": tenant}, {"_id": 0, "id": 1, "type": 1, "meta": 1}).sort("id", 1)
        return [(d["id"], d["type"], d.get("meta", "{}")) for d in docs]

    def devices_of_asset(self, tenant: str, asset: str) -> list[str]:
        docs = self.db.devices.find({"tenant": tenant, "asset": asset}, {"_id": 0, "id": 1}).sort("id", 1)
        return [d["id"] for d in docs]

    def delete_device(self, tenant: str, device: str) -> bool:
        with self._lock:
            n = self.db.devices.delete_one({"_id": device_key(tenant, device)}).deleted_count
            self._registered.remember(tenant, device, None)
        return n > 0

    def is_registered(self, tenant: str, device: str) -> bool:
        return self.registration(tenant, device) is not None

    def registration(self, tenant: str, device: str) -> Registration | None:
        """The tenant's device as ingest checks it; cached (RegistryCache): asked for every device it sees."""
        return self._registered.lookup(tenant, device, lambda: self._load_registration(tenant, device))

    def _load_registration(self, tenant: str, device: str) -> Registration | None:
        doc = self.db.devices.find_one({"_id": device_key(tenant, device)}, {"gateway": 1})
        return None if doc is None else Registration(doc.get("gateway"))

    def set_device_status(self, tenant: str, device: str, status: str) -> None:
        with self._writing():
            self.db.devices.update_one({"_id": device_key(tenant, device)}, {"$set": {"status": status}})

    def put_asset(self, asset: AssetRecord) -> None:
        with self._writing():
            self.db.assets.replace_one(
                {"_id": f"{asset.tenant}|{asset.id}"},
                {"tenant": asset.tenant, "id": asset.id, "kind": asset.kind, "name": asset.name,
                 "parent": asset.parent},
                upsert=True,
            )

    @staticmethod
    def _asset(doc: dict) -> AssetRecord:
        return AssetRecord(doc["tenant"], doc["id"], doc["kind"], doc.get("name", ""), doc.get("parent"))

    def get_asset(self, tenant: str, asset: str) -> AssetRecord | None:
        doc = self.db.assets.find_one({"_id": f"{tenant}|{asset}"})
        return self._asset(doc) if doc else None

    def list_assets(self, tenant: str, after: str | None = None, limit: int | None = None) -> list[AssetRecord]:
        docs = self.db.assets.find({"tenant": tenant, "id": {"$gt": after or ""}}).sort("id", 1).limit(limit or 0)
        return [self._asset(d) for d in docs]
