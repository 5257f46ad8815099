"""Storage backends behind one interface (base.py: a protocol per concern, ``Store`` all of them): embedded SQLite
(default, sqlite/) and MongoDB (mongo/), each split into one module per concern."""

from __future__ import annotations

from gridloop.platform.store.base import Store


def open_store(uri: str, migrate: bool = False) -> Store:
    """Open the store a URI names: ``sqlite:///path/file.db`` or ``mongodb://host:port/db``.

    A store of an older layout raises StoreLayoutError, unless ``migrate`` (gridloop platform migrate) brings it
    to this one first."""
    if uri.startswith("sqlite:///"):
        from gridloop.platform.store.sqlite import SqliteStore

        return SqliteStore(uri.removeprefix("sqlite:///"), migrate=migrate)
    if uri.startswith("mongodb://"):
        from gridloop.platform.store.mongo import MongoStore

        return MongoStore(uri, migrate=migrate)
    raise ValueError(f"unsupported store URI {uri!r}: use sqlite:///path or mongodb://host:port/db")


__all__ = ["Store", "open_store"]
