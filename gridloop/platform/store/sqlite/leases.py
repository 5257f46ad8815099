"""Leases that platform replicas coordinate by, in SQLite."""

from __future__ import annotations

import time

from gridloop.platform.store.sqlite.connection import SqliteBase


class SqliteLeases(SqliteBase):
    """Leases of platform replicas."""

    def acquire_lease(self, name: str, holder: str, ttl_ms: int, now: int | None = None) -> bool:
        now = now if now is not None else time.time_ns() // 1_000_000
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO leases VALUES (?,?,?) ON CONFLICT(name) DO UPDATE SET holder=excluded.holder,"
                " until=excluded.until WHERE leases.holder=excluded.holder OR leases.until<?",
                (name, holder, now + ttl_ms, now))
            return cur.rowcount > 0

    def release_lease(self, name: str, holder: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM leases WHERE name=? AND holder=?", (name, holder))
