"""Devices and assets in MongoDB; device ownership is checked under the store's write serialisation."""

from __future__ import annotations

import time

import orjson

from gridloop.platform.store.mongo.connection import MongoBase
from gridloop.platform.store.records import OWNER_CACHE_S, AssetRecord, DeviceRecord


class MongoRegistry(MongoBase):
    """Devices (_id the device id) and assets (_id tenant|asset); device -> tenant look-ups cached per process."""

    def put_devices(self, devices: list[DeviceRecord]) -> None:
        """New devices are inserted in bulk (cheap on FerretDB); known ones are updated, keeping their status."""
        with self._writing():
            # ownership from the store, not the cache: another replica may have deleted or created the id
            owners = {doc["_id"]: doc["tenant"] for doc in
                      self.db.devices.find({"_id": {"$in": [d.id for d in devices]}}, {"tenant": 1})}
            taken = [d.id for d in devices if owners.get(d.id) not in (None, d.tenant)]
            if taken:
                raise ValueError(f"device id(s) already used by another tenant: {', '.join(taken[:5])}")
            fields = [
                (d, {"tenant": d.tenant, "type": d.type, "phases": d.phases, "gateway": d.gateway, "asset": d.asset,
                     "meta": orjson.dumps(d.meta).decode()})
                for d in devices
            ]
            fresh = {d.id: {"_id": d.id, **f, "status": d.status} for d, f in fields if d.id not in owners}
            if fresh:
                self._insert("devices", list(fresh.values()))
            # the tenant in the filter: an id another replica just gave to another tenant fails on its _id
            known = [(d, f) for d, f in fields if d.id in owners]
            failed = self._update("devices", [{"q": {"_id": d.id, "tenant": d.tenant}, "u": {"$set": f},
                                               "upsert": True} for d, f in known]) if known else set()
            lost = [known[i][0].id for i in sorted(failed)]
            if fresh:  # an insert that met an existing _id was skipped: whose is it now?
                lost += [doc["_id"] for doc in self.db.devices.find({"_id": {"$in": list(fresh)}}, {"tenant": 1})
                         if doc["tenant"] != fresh[doc["_id"]]["tenant"]]
            if lost:
                raise ValueError(f"device id(s) already used by another tenant: {', '.join(lost[:5])}")
            now = time.monotonic()
            for d in devices:
                self._owners[d.id] = (d.tenant, now)

    @staticmethod
    def _device(doc: dict) -> DeviceRecord:
        return DeviceRecord(
            tenant=doc["tenant"], id=doc["_id"], type=doc["type"], phases=doc["phases"], gateway=doc.get("gateway"),
            asset=doc.get("asset"), status=doc.get("status", "unknown"), meta=orjson.loads(doc.get("meta", "{}")),
        )

    def get_device(self, tenant: str, device: str) -> DeviceRecord | None:
        doc = self.db.devices.find_one({"_id": device, "tenant": tenant})
        return self._device(doc) if doc else None

    def list_devices(self, tenant: str) -> list[DeviceRecord]:
        return [self._device(d) for d in self.db.devices.find({"tenant": tenant}).sort("_id", 1)]

    def delete_device(self, tenant: str, device: str) -> bool:
        with self._lock:
            n = self.db.devices.delete_one({"_id": device, "tenant": tenant}).deleted_count
            self._owners.pop(device, None)
        return n > 0

    def owner_of(self, device: str) -> str | None:
        """The device's tenant; cached at most OWNER_CACHE_S (a change through another replica shows by then)."""
        cached = self._owners.get(device)
        now = time.monotonic()
        if cached is not None and now - cached[1] < OWNER_CACHE_S:
            return cached[0]
        doc = self.db.devices.find_one({"_id": device}, {"tenant": 1})
        if doc is None:
            self._owners.pop(device, None)
            return None
        self._owners[device] = (doc["tenant"], now)
        return doc["tenant"]

    def set_device_status(self, tenant: str, device: str, status: str) -> None:
        with self._writing():
            self.db.devices.update_one({"_id": device, "tenant": tenant}, {"$set": {"status": status}})

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

    def list_assets(self, tenant: str) -> list[AssetRecord]:
        return [self._asset(d) for d in self.db.assets.find({"tenant": tenant}).sort("id", 1)]
