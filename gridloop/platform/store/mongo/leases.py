"""Leases that platform replicas coordinate by, in MongoDB."""

from __future__ import annotations

import time

from pymongo.errors import DuplicateKeyError

from gridloop.platform.store.mongo.connection import MongoBase


class MongoLeases(MongoBase):
    """Leases: _id the name, the holder and until when (epoch ms)."""

    def acquire_lease(self, name: str, holder: str, ttl_ms: int, now: int | None = None) -> bool:
        now = now if now is not None else time.time_ns() // 1_000_000
        until = now + ttl_ms
        with self._writing():
            return self._acquire_lease(name, holder, until, now)

    def _acquire_lease(self, name: str, holder: str, until: int, now: int) -> bool:
        try:
            if self.db.leases.update_one({"_id": name, "holder": holder}, {"$set": {"until": until}}).matched_count:
                return True  # renewed
            res = self.db.leases.update_one({"_id": name, "until": {"$lt": now}},
                                            {"$set": {"holder": holder, "until": until}})
            if res.matched_count:
                return True  # taken over an expired one
            self.db.leases.insert_one({"_id": name, "holder": holder, "until": until})
            return True  # the first holder
        except DuplicateKeyError:
            return False  # someone else holds it, unexpired

    def release_lease(self, name: str, holder: str) -> None:
        with self._writing():
            self.db.leases.delete_one({"_id": name, "holder": holder})
