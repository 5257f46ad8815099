"""Tenants and their hashed API keys in SQLite."""

from __future__ import annotations

import sqlite3

from gridloop.platform.store.records import hash_key, new_api_key
from gridloop.platform.store.sqlite.connection import SqliteBase


class SqliteTenants(SqliteBase):
    """Tenants: the name and the SHA-256 of its API key."""

    def create_tenant(self, name: str) -> str:
        key = new_api_key()
        with self._lock:
            try:
                self._db.execute("INSERT INTO tenants VALUES (?, ?)", (name, hash_key(key)))
            except sqlite3.IntegrityError:
                raise ValueError(f"tenant {name!r} exists already") from None
        return key

    def tenant_of_key(self, api_key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT name FROM tenants WHERE key_hash=?", (hash_key(api_key),)).fetchone()
        return row[0] if row else None

    def tenant_exists(self, name: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM tenants WHERE name=?", (name,)).fetchone() is not None
