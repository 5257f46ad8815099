"""A store that goes away for 30 s (SQLite locked past its busy timeout, the MongoDB server killed) pauses ingest:
/health says degraded, nothing is acknowledged meanwhile (no delivery acknowledgement, nothing readable that was not
stored before), nothing is lost, and every reading is stored exactly once when the store is back.

Both outages run side by side in one test, each with its own broker and platform: they are mostly waiting."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest

from gridloop.broker import EmbeddedBroker, free_port
from gridloop.contract import Quantity, TopicKind, topic
from gridloop.contract.delivery import decode_ack
from gridloop.mqtt_client import connect, wait_for
from gridloop.platform.service import PlatformService

OUTAGE_S = 30.0  # issue #14: store locked / unreachable for 30 s
PUBLISHER = "dia-1"
T0 = 1_767_225_600_000
V1 = Quantity.VOLTAGE_L1.value


def _setup(service: PlatformService) -> httpx.Client:
    r = httpx.post(f"{service.url}/api/v1/tenants", json={"name": "alpha"},
                   headers={"Authorization": f"Bearer {service.admin_key}"}, timeout=60)
    r.raise_for_status()
    api = httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {r.json()['api_key']}"}, timeout=60)
    api.post("/api/v1/devices", json={"id": "m1", "type": "electricity_meter"}).raise_for_status()
    return api


def _publish(client, first: int, count: int) -> None:
    """Numbered envelopes (id k): the platform acknowledges each on the publisher's acks topic once stored."""
    for k in range(first, first + count):
        body = orjson.dumps({"v": 1, "id": k,
                             "readings": [{"dev": "m1", "ts": T0 + 1000 * k, "seq": k, "q": {V1: 230.0}}]})
        client.publish(topic("alpha", TopicKind.TELEMETRY, PUBLISHER), body, qos=1).wait_for_publish(10)


class Publisher:
    """A DIA's MQTT side: publishes numbered envelopes and records the platform's delivery acknowledgements."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self.acked: list[int] = []
        self._lock = threading.Lock()
        self.client = connect(broker.address, f"dia-{secrets.token_hex(3)}", on_message=self._on_ack,
                              subscriptions=[(topic("alpha", TopicKind.ACKS, PUBLISHER), 1)])

    def _on_ack(self, client, userdata, msg) -> None:
        with self._lock:
            self.acked += decode_ack(msg.payload)

    def acks(self) -> list[int]:
        with self._lock:
            return sorted(self.acked)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _stored_once(api: httpx.Client, count: int) -> bool:
    got = api.get("/api/v1/devices/m1/readings", params={"limit": 10_000}).json()["readings"]
    return sorted(r["ts"] for r in got) == [T0 + 1000 * k for k in range(count)]


def _ingest(service: PlatformService) -> dict:
    """The replica's own ingest counters (the admin's view: outages are not one tenant's)."""
    r = httpx.get(f"{service.url}/api/v1/admin/metrics", headers={"Authorization": f"Bearer {service.admin_key}"})
    return r.json()["ingest"]


def _health(service: PlatformService) -> dict:
    return httpx.get(f"{service.url}/api/v1/health").json()


@contextmanager
def _running(tmp_path: Path, store_uri: str) -> Iterator[tuple[PlatformService, httpx.Client, Publisher]]:
    """A platform on its own broker with a device that has published readings 0-9, each stored once and acknowledged."""
    admin = "adm_" + secrets.token_hex(8)
    with EmbeddedBroker(workdir=str(tmp_path / "broker")) as broker:
        service = PlatformService(broker.uri, store_uri, port=0, admin_key=admin)
        service.admin_key = admin
        device = Publisher(broker)
        try:
            with service:
                api = _setup(service)
                _publish(device.client, 0, 10)
                assert wait_for(lambda: _stored_once(api, 10) and device.acks() == list(range(10)), 20)
                yield service, api, device
        finally:
            device.close()


def _sqlite_locked(tmp_path: Path) -> float:
    """SQLite locked by another process for OUTAGE_S; returns how long the lock was held."""
    path = tmp_path / "store.db"
    with _running(tmp_path, f"sqlite:///{path}") as (service, api, device):
        locker = sqlite3.connect(path, timeout=1, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock past the busy_timeout
        locked_at = time.monotonic()
        try:
            _publish(device.client, 10, 40)
            assert wait_for(lambda: _ingest(service)["degraded"] == 1, 30)
            assert _health(service) == {"status": "degraded", "store_available": False}
            time.sleep(max(0.0, locked_at + OUTAGE_S - time.monotonic()))
            assert _health(service) == {"status": "degraded", "store_available": False}  # still, at 30 s
            assert len(api.get("/api/v1/devices/m1/readings").json()["readings"]) == 10
            assert device.acks() == list(range(10))  # nothing acknowledged while the store was away
        finally:
            held = time.monotonic() - locked_at
            locker.execute("ROLLBACK")
            locker.close()
        assert wait_for(lambda: _stored_once(api, 50) and device.acks() == list(range(50)), 30)
        assert _health(service)["status"] == "ok"
        counters = _ingest(service)
        assert counters["degraded"] == 0 and counters["store_outages"] >= 1 and counters["quarantined"] == 0
        assert counters["readings_stored"] == 50 and counters["readings_duplicate"] == 0
    return held


def _ferretdb(binary: str, port: int, data: Path) -> subprocess.Popen:
    env = {**os.environ, "FERRETDB_TELEMETRY": "disable", "DO_NOT_TRACK": "1"}
    proc = subprocess.Popen([binary, "-listen", f"127.0.0.1:{port}", "-dir", str(data)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("FerretDB did not start")


def _mongodb_killed(tmp_path: Path, binary: str) -> float:
    """The MongoDB server (FerretDB) killed and started again OUTAGE_S later; returns how long it was away."""
    port, data = free_port(), tmp_path / "ferret"
    server = _ferretdb(binary, port, data)
    try:
        with _running(tmp_path, f"mongodb://127.0.0.1:{port}/outage?serverSelectionTimeoutMS=3000") as (
                service, api, device):
            server.send_signal(signal.SIGKILL)
            server.wait()
            killed_at = time.monotonic()
            _publish(device.client, 10, 20)  # the broker takes them; the platform cannot store them
            assert wait_for(lambda: _ingest(service)["degraded"] == 1, 20)
            assert _health(service) == {"status": "degraded", "store_available": False}
            time.sleep(max(0.0, killed_at + OUTAGE_S - time.monotonic()))
            assert _health(service) == {"status": "degraded", "store_available": False}  # still, at 30 s
            assert device.acks() == list(range(10))  # nothing acknowledged while the store was away
            away = time.monotonic() - killed_at
            server = _ferretdb(binary, port, data)
            assert wait_for(lambda: _stored_once(api, 30) and device.acks() == list(range(30)), 60)
            assert _health(service)["status"] == "ok"
            counters = _ingest(service)
            assert counters["store_outages"] >= 1 and counters["degraded"] == 0
            assert counters["readings_stored"] == 30 and counters["readings_duplicate"] == 0
    finally:
        server.kill()
    return away


@pytest.mark.slow
def test_a_store_away_for_30_s_loses_nothing_sqlite_locked_and_mongodb_killed(mongo_uri, tmp_path):
    binary = os.environ.get("GRIDLOOP_FERRETDB_BIN")
    if not binary:
        pytest.fail("GRIDLOOP_FERRETDB_BIN is not set: scripts/test.sh exports the FerretDB launcher it built")
    (tmp_path / "sqlite").mkdir()
    (tmp_path / "mongo").mkdir()
    with ThreadPoolExecutor(2) as pool:  # side by side: each has its own broker, platform and store
        locked = pool.submit(_sqlite_locked, tmp_path / "sqlite")
        killed = pool.submit(_mongodb_killed, tmp_path / "mongo", binary)
        assert locked.result() >= OUTAGE_S
        assert killed.result() >= OUTAGE_S
