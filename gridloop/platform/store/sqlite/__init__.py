"""Embedded store on SQLite (connection.py: one file, WAL journal), one module per concern."""

from __future__ import annotations

from gridloop.platform.store.sqlite.commands import SqliteCommands
from gridloop.platform.store.sqlite.leases import SqliteLeases
from gridloop.platform.store.sqlite.readings import SqliteReadings
from gridloop.platform.store.sqlite.registry import SqliteRegistry
from gridloop.platform.store.sqlite.rollups import SqliteRollups
from gridloop.platform.store.sqlite.tenants import SqliteTenants


class SqliteStore(SqliteTenants, SqliteRegistry, SqliteReadings, SqliteRollups, SqliteCommands, SqliteLeases):
    """The default store (``sqlite:///path/file.db``); safe to share between the API, ingest and dispatch threads."""


__all__ = ["SqliteStore"]
