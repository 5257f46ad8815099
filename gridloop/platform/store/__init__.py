"""Storage backends behind one interface (base.py: a protocol per concern, ``Store`` all of them): embedded SQLite
(default, sqlite/) and MongoDB (mongo/), each split into one module per concern."""

from __future__ import annotations

from gridloop.platform.store.base import Store


def open_store(uri: str) -> Store:
    """Open the store a URI names: ``sqlite:///path/file.db`` or ``mongodb://host:port/db``."""
    if uri.startswith("sqlite:///"):
        from gridloop.platform.store.sqlite import SqliteStore

        return SqliteStore(uri.removeprefix("sqlite:///"))
    if uri.startswith("mongodb://"):
        from gridloop.platform.store.mongo import MongoStore

        return MongoStore(uri)
    raise ValueError(f"unsupported store URI {uri!r}: use sqlite:///path or mongodb://host:port/db")


__all__ = ["Store", "open_store"]
