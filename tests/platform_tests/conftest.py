"""Store fixtures for the platform tests: every contract test runs against SQLite and against MongoDB (FerretDB)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator

import orjson
import pymongo
import pytest

from gridloop.contract import BrokerAddress, topic
from gridloop.mqtt_client import connect
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
    service = PlatformService(broker_uri, uri, port=0, admin_key=admin)
    service.admin_key = admin
    with service:
        yield service
    with pymongo.MongoClient(uri) as client:
        client.drop_database(name)


@pytest.fixture(params=["sqlite", "mongo"])
def any_platform(request):
    """The running platform on each store."""
    return request.getfixturevalue("platform" if request.param == "sqlite" else "mongo_platform")


class PahoDevice:
    """A paho device: retained status with last will 'offline', records the command ids it receives."""

    def __init__(self, broker_uri: str, tenant: str, device: str) -> None:
        self.status_topic = topic(tenant, "status", device)
        self.commands_topic = topic(tenant, "commands", device)
        self.received: list[str] = []
        self._lock = threading.Lock()
        self.client = connect(BrokerAddress.parse(broker_uri), f"dev-{device}-{secrets.token_hex(3)}",
                              will=(self.status_topic, b"offline"), on_message=self._on_message)

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.received.append(orjson.loads(msg.payload)["id"])

    def status(self, value: str) -> None:
        self.client.publish(self.status_topic, value.encode(), qos=1, retain=True).wait_for_publish(5)

    def listen(self) -> None:
        self.client.subscribe(self.commands_topic, qos=1)

    def close(self) -> None:
        self.client.publish(self.status_topic, b"", qos=1, retain=True).wait_for_publish(5)  # clear the retained
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def paho_device() -> type[PahoDevice]:
    """The device class, for tests that build one or more (a fixture: test modules do not import each other)."""
    return PahoDevice


@pytest.fixture(params=["sqlite", "mongo"])
def store_uri(request, tmp_path):
    """A fresh store URI of each kind that several handles (or processes) can open."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    uri, name = unique_mongo_uri(request.getfixturevalue("mongo_uri"))
    yield uri
    with pymongo.MongoClient(uri) as client:
        client.drop_database(name)
