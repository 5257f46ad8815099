"""``gridloop platform migrate`` on MongoDB: layout 1 -> 2 re-keys devices, 2 -> 3 moves readings from hourly
documents (one upsert per reading) into chunk documents (chunks.py). Each step copies, then removes what it
copied: a migration stopped half-way is finished by running it again, and nothing is stored twice (the readings'
key documents see to that)."""

from __future__ import annotations

from gridloop.platform.envelope import Reading
from gridloop.platform.store.layout import LAYOUT_KEY
from gridloop.platform.store.mongo.chunks import plan_chunks
from gridloop.platform.store.mongo.connection import MONGO_LAYOUT
from gridloop.platform.store.mongo.readings import MongoReadings

HOURS_PER_STEP = 500  # layout-2 reading documents moved per step


class MongoMigration(MongoReadings):
    """The migration steps, run by MongoBase.__init__ when asked to migrate."""

    def _migrate_from(self, found: int) -> None:
        with self._writing():
            if found < 2:
                self._rekey_devices()
            if found < 3:
                self._move_hourly_readings()
            self.db.store_info.update_one({"_id": LAYOUT_KEY}, {"$set": {"value": MONGO_LAYOUT}}, upsert=True)

    def _rekey_devices(self) -> None:
        """Layout 1 -> 2: device documents re-keyed from the global id to tenant|id."""
        for doc in list(self.db.devices.find({"id": {"$exists": False}})):
            new = {**doc, "_id": f"{doc['tenant']}|{doc['_id']}", "id": doc["_id"]}
            self._insert("devices", [new])
            self.db.devices.delete_one({"_id": doc["_id"]})

    def _move_hourly_readings(self) -> None:
        """Layout 2 -> 3: each hourly document's samples into chunks, marked folded (layout 2 folded every reading
        into the rollups as it stored it), then the hourly documents removed."""
        while True:
            docs = list(self.db.readings.find({}).sort("_id", 1).limit(HOURS_PER_STEP))
            if not docs:
                self.db.readings.drop()
                return
            by_tenant: dict[str, list[Reading]] = {}
            for doc in docs:
                rows = by_tenant.setdefault(doc["tenant"], [])
                for ts in doc.get("k", ()):
                    sample = doc["s"][str(ts)]
                    rows.append(Reading(doc["dev"], int(ts), sample.get("seq"),
                                        {p["k"]: p["v"] for p in sample["q"]}))
            for tenant, rows in by_tenant.items():
                self._store_chunks(tenant, plan_chunks(tenant, rows), fold=False)
            self.db.readings.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
