"""Store fixtures for the platform tests: every contract test runs against SQLite and against MongoDB (FerretDB)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pymongo
import pytest

from gridloop.broker import free_port
from gridloop.platform.store.base import Store


def unique_mongo_uri(mongo_uri: str) -> tuple[str, str]:
    """The test server's URI with a fresh database name, and that name (dropped after the test)."""
    base, _, query = mongo_uri.partition("?")
    name = "gl_" + secrets.token_hex(6)
    uri = base.rsplit("/", 1)[0] + "/" + name + (("?" + query) if query else "")
    return uri, name


@pytest.fixture(params=["sqlite", "mongo"])
def store(request, tmp_path) -> Iterator[Store]:
    """A fresh, empty store of each kind."""
    if request.param == "sqlite":
        from gridloop.platform.store.sqlite import SqliteStore

        s = SqliteStore(str(tmp_path / "store.db"))
        yield s
        s.close()
        return
    from gridloop.platform.store.mongo import MongoStore

    uri, name = unique_mongo_uri(request.getfixturevalue("mongo_uri"))
    s = MongoStore(uri)
    yield s
    s.close()
    with pymongo.MongoClient(uri) as client:
        client.drop_database(name)


@pytest.fixture
def mongo_platform(broker_uri, mongo_uri):
    """A running platform (ingest, dispatch, REST) on a fresh MongoDB database."""
    from gridloop.platform.service import PlatformService

    uri, name = unique_mongo_uri(mongo_uri)
    admin = "adm_" + secrets.token_hex(8)
    service = PlatformService(broker_uri, uri, port=free_port(), admin_key=admin)
    service.admin_key = admin
    with service:
        yield service
    with pymongo.MongoClient(uri) as client:
        client.drop_database(name)


@pytest.fixture(params=["sqlite", "mongo"])
def any_platform(request):
    """The running platform on each store."""
    return request.getfixturevalue("platform" if request.param == "sqlite" else "mongo_platform")
