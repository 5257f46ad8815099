"""Tenants and their hashed API keys in MongoDB."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from gridloop.platform.store.mongo.connection import MongoBase
from gridloop.platform.store.records import hash_key, new_api_key


class MongoTenants(MongoBase):
    """Tenants: _id the name, and the SHA-256 of the API key."""

    def create_tenant(self, name: str) -> str:
        key = new_api_key()
        try:
            self.db.tenants.insert_one({"_id": name, "key_hash": hash_key(key)})
        except DuplicateKeyError:
            raise ValueError(f"tenant {name!r} exists already") from None
        return key

    def tenant_of_key(self, api_key: str) -> str | None:
        doc = self.db.tenants.find_one({"key_hash": hash_key(api_key)})
        return doc["_id"] if doc else None

    def tenant_exists(self, name: str) -> bool:
        return self.db.tenants.find_one({"_id": name}) is not None
