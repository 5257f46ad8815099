"""A store that goes away (SQLite locked past its busy timeout, the MongoDB server killed) pauses ingest: nothing is
acknowledged meanwhile, nothing is lost, and every reading is stored exactly once when the store is back."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import orjson
import pytest

from gridloop.broker import free_port
from gridloop.contract import BrokerAddress, Quantity, TopicKind, topic
from gridloop.mqtt_client import connect, wait_for
from gridloop.platform.service import PlatformService

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
    for k in range(first, first + count):
        body = orjson.dumps({"v": 1, "readings": [{"dev": "m1", "ts": T0 + 1000 * k, "seq": k, "q": {V1: 230.0}}]})
        client.publish(topic("alpha", TopicKind.TELEMETRY, "dia-1"), body, qos=1).wait_for_publish(10)


def _stored_once(api: httpx.Client, count: int) -> bool:
    got = api.get("/api/v1/devices/m1/readings", params={"limit": 10_000}).json()["readings"]
    return sorted(r["ts"] for r in got) == [T0 + 1000 * k for k in range(count)]


def _ingest(service: PlatformService) -> dict:
    """The replica's own ingest counters (the admin's view: outages are not one tenant's)."""
    r = httpx.get(f"{service.url}/api/v1/admin/metrics", headers={"Authorization": f"Bearer {service.admin_key}"})
    return r.json()["ingest"]


def test_sqlite_locked_past_its_busy_timeout_loses_nothing(broker_uri, tmp_path):
    admin = "adm_" + secrets.token_hex(8)
    path = tmp_path / "store.db"
    service = PlatformService(broker_uri, f"sqlite:///{path}", port=0, admin_key=admin,
                              ingest_group=f"ingest-{secrets.token_hex(4)}")
    service.admin_key = admin
    device = connect(BrokerAddress.parse(broker_uri), f"dev-{secrets.token_hex(3)}")
    with service:
        api = _setup(service)
        _publish(device, 0, 10)
        assert wait_for(lambda: _stored_once(api, 10), 10)
        locker = sqlite3.connect(path, timeout=1, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock past the store's busy_timeout
        try:
            _publish(device, 10, 40)
            assert wait_for(lambda: _ingest(service)["degraded"] == 1, 30)
            assert httpx.get(f"{service.url}/api/v1/health").json() == {"status": "degraded",
                                                                         "store_available": False}
            assert len(api.get("/api/v1/devices/m1/readings").json()["readings"]) == 10
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert wait_for(lambda: _stored_once(api, 50), 30)
        assert httpx.get(f"{service.url}/api/v1/health").json()["status"] == "ok"
        counters = _ingest(service)
        assert counters["degraded"] == 0 and counters["store_outages"] >= 1 and counters["quarantined"] == 0
    device.disconnect()
    device.loop_stop()


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


@pytest.mark.slow
def test_mongodb_killed_for_a_while_loses_nothing(broker_uri, mongo_uri, tmp_path):
    binary = os.environ.get("GRIDLOOP_FERRETDB_BIN")
    if not binary:
        pytest.fail("GRIDLOOP_FERRETDB_BIN is not set: scripts/test.sh exports the FerretDB launcher it built")
    port, data = free_port(), tmp_path / "ferret"
    server = _ferretdb(binary, port, data)
    admin = "adm_" + secrets.token_hex(8)
    service = PlatformService(broker_uri, f"mongodb://127.0.0.1:{port}/outage?serverSelectionTimeoutMS=3000",
                              port=0, admin_key=admin, ingest_group=f"ingest-{secrets.token_hex(4)}")
    service.admin_key = admin
    device = connect(BrokerAddress.parse(broker_uri), f"dev-{secrets.token_hex(3)}")
    try:
        with service:
            api = _setup(service)
            _publish(device, 0, 10)
            assert wait_for(lambda: _stored_once(api, 10), 20)
            server.send_signal(signal.SIGKILL)
            server.wait()
            _publish(device, 10, 20)  # the broker takes them; the platform cannot store them
            time.sleep(8)
            server = _ferretdb(binary, port, data)
            assert wait_for(lambda: _stored_once(api, 30), 60)
            counters = _ingest(service)
            assert counters["store_outages"] >= 1 and counters["degraded"] == 0
    finally:
        server.kill()
        device.disconnect()
        device.loop_stop()
