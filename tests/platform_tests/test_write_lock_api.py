"""The FerretDB write lock through the real API: a write whose lock another process took over mid-write, or that
cannot get the lock, answers 503 with Retry-After and the reason (never a bare 500), leaves nothing written after
the take-over, and ingest treats the busy lock as an outage (nothing stored or acknowledged until it is free)."""

from __future__ import annotations

import secrets
import threading
import time

import httpx
import orjson
import pymongo

from gridloop.contract import BrokerAddress, Quantity, TopicKind, topic
from gridloop.contract.rest import StoreOutage
from gridloop.mqtt_client import connect, wait_for
from gridloop.platform.store.mongo import connection
from gridloop.platform.store.mongo.writer_lock import LOCK

DEVICES = 300  # 6 update chunks of 50: the write lasts long enough for a take-over in its middle
T0 = 1_767_225_600_000


def _tenant(service, request) -> httpx.Client:
    """A tenant's API client, closed when the test ends (an unclosed one leaks its socket into a later test)."""
    r = httpx.post(f"{service.url}/api/v1/tenants", json={"name": "lock"},
                   headers={"Authorization": f"Bearer {service.admin_key}"}, timeout=60)
    r.raise_for_status()
    client = httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {r.json()['api_key']}"},
                          timeout=60)
    request.addfinalizer(client.close)
    return client


def _devices(version: int) -> list[dict]:
    return [{"id": f"m{i:04d}", "type": "electricity_meter", "meta": {"v": version}} for i in range(DEVICES)]


def _versions(locks: pymongo.collection.Collection) -> list[int]:
    docs = locks.database.devices.find({"tenant": "lock"}, {"meta": 1})
    return sorted(orjson.loads(d["meta"])["v"] for d in docs)


def _take_over(locks: pymongo.collection.Collection, platform_token: str, done: threading.Event) -> dict:
    """Another process takes the lock over from the platform mid-write (it thought the holder dead): inserts the
    next generation as soon as the platform holds one."""
    while not done.is_set():
        newest = locks.find_one({"name": LOCK}, sort=[("gen", -1)])
        if newest and newest["holder"] == platform_token and newest["until"] > time.time() * 1000:
            gen = newest["gen"] + 1
            doc = {"_id": f"{LOCK}:{gen}", "name": LOCK, "gen": gen, "holder": "intruder",
                   "until": int(time.time() * 1000) + 600_000}
            locks.insert_one(doc)
            return doc
    return {}


def test_a_write_whose_lock_is_taken_over_answers_503_and_stops(mongo_platform, monkeypatch, request):
    monkeypatch.setattr(connection, "WRITE_LOCK_RENEW_S", 0.0)  # check the lock at every chunk, not every second
    store = mongo_platform.store
    locks = store.db.locks
    api = _tenant(mongo_platform, request)
    assert api.post("/api/v1/devices", json=_devices(1)).status_code == 201
    done, taken = threading.Event(), {}
    intruder = threading.Thread(target=lambda: taken.update(_take_over(locks, store._token, done)))
    intruder.start()
    try:
        r = api.post("/api/v1/devices", json=_devices(2))  # 6 chunks of updates
    finally:
        done.set()
        intruder.join()
    assert taken, "the platform never held the lock"
    try:
        _lost_lock_answer(r, locks, taken)
    finally:
        locks.update_one({"_id": taken["_id"]}, {"$set": {"until": 0}})  # the new holder is done
    assert api.post("/api/v1/devices", json=_devices(2)).status_code == 201  # the retry writes it whole
    assert _versions(locks) == [2] * DEVICES


def _lost_lock_answer(r: httpx.Response, locks: pymongo.collection.Collection, taken: dict) -> None:
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json()["reason"] == StoreOutage.WRITE_LOCK_LOST
    after = _versions(locks)
    assert len(after) == DEVICES and after.count(2) < DEVICES  # stopped mid-write: whole records, old or new
    time.sleep(0.3)
    assert _versions(locks) == after  # nothing more written after the 503
    newest = locks.find_one({"name": LOCK}, sort=[("gen", -1)])
    assert newest == taken  # the new holder's lock untouched: neither renewed nor released by the old holder


def test_a_busy_write_lock_answers_503_and_pauses_ingest(mongo_platform, broker_uri, monkeypatch, request):
    monkeypatch.setattr(connection, "WRITE_LOCK_WAIT_S", 0.5)
    store, admin = mongo_platform.store, {"Authorization": f"Bearer {mongo_platform.admin_key}"}
    locks = store.db.locks
    api = _tenant(mongo_platform, request)
    assert api.post("/api/v1/devices", json={"id": "m1", "type": "electricity_meter"}).status_code == 201
    newest = locks.find_one({"name": LOCK}, sort=[("gen", -1)])
    gen = newest["gen"] + 1
    locks.insert_one({"_id": f"{LOCK}:{gen}", "name": LOCK, "gen": gen, "holder": "other",
                      "until": int(time.time() * 1000) + 600_000})  # another replica holds the lock, alive
    publisher = connect(BrokerAddress.parse(broker_uri), f"lock-pub-{secrets.token_hex(3)}")
    released = False
    try:
        r = api.post("/api/v1/devices", json={"id": "m2", "type": "electricity_meter"})
        assert r.status_code == 503 and r.headers["Retry-After"]
        assert r.json()["reason"] == StoreOutage.WRITE_LOCK_BUSY
        assert api.get("/api/v1/devices/m2").status_code == 404  # nothing written
        body = orjson.dumps({"v": 1, "readings": [{"dev": "m1", "ts": T0, "seq": 0,
                                                   "q": {Quantity.VOLTAGE_L1.value: 230.0}}]})
        publisher.publish(topic("lock", TopicKind.TELEMETRY, "dia"), body, qos=1).wait_for_publish(10)
        metrics = lambda: httpx.get(f"{mongo_platform.url}/api/v1/admin/metrics", headers=admin).json()["ingest"]  # noqa: E731
        assert wait_for(lambda: metrics()["degraded"] == 1, 20)  # ingest: an outage, retried, unacknowledged
        assert api.get("/api/v1/devices/m1/readings").json()["readings"] == []
        locks.update_one({"_id": f"{LOCK}:{gen}"}, {"$set": {"until": 0}})  # released
        released = True
        assert wait_for(lambda: len(api.get("/api/v1/devices/m1/readings").json()["readings"]) == 1, 20)
        assert wait_for(lambda: metrics()["degraded"] == 0, 10)
        assert api.post("/api/v1/devices", json={"id": "m2", "type": "electricity_meter"}).status_code == 201
    finally:
        if not released:  # a failing test must not leave the platform waiting for the lock
            locks.update_one({"_id": f"{LOCK}:{gen}"}, {"$set": {"until": 0}})
        publisher.disconnect()
        publisher.loop_stop()
