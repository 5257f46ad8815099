"""Hostile input through the real broker: fuzzed payloads from two tenants cost no good reading, and each is
rejected with a reason; a poison flood from one tenant does not stall another's ingest."""

from __future__ import annotations

import json
import random
import secrets
import time

import httpx
import orjson
import pytest

from gridloop.contract import BrokerAddress, Quantity, TopicKind, topic
from gridloop.contract.bounds import MAX_PAYLOAD_BYTES, MAX_READINGS_PER_ENVELOPE, SEQ_MAX, TS_MAX_MS
from gridloop.mqtt_client import connect, wait_for

T0 = 1_767_225_600_000
V1, P = Quantity.VOLTAGE_L1.value, Quantity.POWER_ACTIVE_TOTAL.value
METERS = 10
BAD_TS = [-1, 0, TS_MAX_MS, 2**63, 2**64 + 5, 10**30, 1.5e12, "1767225600000", None, True, [T0]]
BAD_SEQ = [-1, SEQ_MAX + 1, 2**63, 1.5, "1", True, [1], {"n": 1}]
BAD_VALUE = [1e400, -1e400, 1e16, "230", None, {"a": 1}, [1.0], True, ""]
BAD_QUANTITY = ["", "x", "electricity.voltage", "ELECTRICITY.VOLTAGE.L1", V1 + " ", "q" * 300, "électricité"]
BAD_DEV = ["", "M1", "m" * 64, 123, None, ["m"], "zz999"]
RAW = [b"", b"\xff\xfe\xfd", b"{", b"null", b"[]", b"{}", b'{"v":1}', b'{"v":2,"readings":[]}',
       b'{"v":1,"readings":{}}', b'{"v":1,"readings":[5]}', b"[" * 5000, b'{"v":1,"readings":[NaN]}',
       b'{"v":1,"readings":[{"dev":"m","ts":Infinity}]}',
       b'{"v":1,"readings":[{"dev":"a1","ts":1767225600000,"q":{"electricity.voltage.l1":1e400}}]}']


def _tenant(platform, name: str) -> httpx.Client:
    r = httpx.post(f"{platform.url}/api/v1/tenants", json={"name": name},
                   headers={"Authorization": f"Bearer {platform.admin_key}"})
    r.raise_for_status()
    api = httpx.Client(base_url=platform.url, headers={"Authorization": f"Bearer {r.json()['api_key']}"}, timeout=30)
    api.post("/api/v1/devices", json=[{"id": f"{name[0]}{i}", "type": "electricity_meter"} for i in range(METERS)]
             ).raise_for_status()
    return api


class Fleet:
    """Good readings with unique timestamps per meter, and the record of what should be stored."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.expected: dict[str, set[int]] = {f"{prefix}{i}": set() for i in range(METERS)}
        self.n = 0

    def good(self) -> dict:
        dev = f"{self.prefix}{self.n % METERS}"
        ts = T0 + 1000 * (self.n // METERS)
        self.n += 1
        self.expected[dev].add(ts)
        return {"dev": dev, "ts": ts, "seq": self.n, "q": {V1: 230.0 + self.n % 7, P: float(self.n)}}


def _bad_reading(rng: random.Random, dev: str, other_dev: str) -> dict:
    reading = {"dev": dev, "ts": T0 + 10**9 + rng.randrange(10**6), "seq": 1, "q": {V1: 231.0}}
    field = rng.choice(["ts", "seq", "value", "quantity", "dev", "other", "q", "missing", "extra_q"])
    if field == "ts":
        reading["ts"] = rng.choice(BAD_TS)
    elif field == "seq":
        reading["seq"] = rng.choice(BAD_SEQ)
    elif field == "value":
        reading["q"] = {V1: rng.choice(BAD_VALUE)}
    elif field == "quantity":
        reading["q"] = {rng.choice(BAD_QUANTITY): 1.0}
    elif field == "dev":
        reading["dev"] = rng.choice(BAD_DEV)
    elif field == "other":
        reading["dev"] = other_dev  # another tenant's meter
    elif field == "q":
        reading["q"] = rng.choice([{}, [], "q", None, 5])
    elif field == "missing":
        del reading[rng.choice(["dev", "ts", "q"])]
    else:
        reading["q"] = {f"{V1}{i}": 1.0 for i in range(65)}
    return reading


def _dumps(doc: dict) -> bytes:
    """JSON of a hostile document (json for integers beyond 64 bits, which orjson refuses)."""
    try:
        return orjson.dumps(doc)
    except TypeError:
        return json.dumps(doc, allow_nan=False).encode()


def bad_payload(rng: random.Random, fleet: Fleet, other: str) -> tuple[TopicKind, bytes, bool]:
    """(topic kind, payload, carries a good reading too): a payload that yields exactly one rejection."""
    kind = rng.random()
    if kind < 0.08:
        return TopicKind.TELEMETRY, rng.choice(RAW), False
    if kind < 0.1:  # a good envelope cut short, or too many readings, or too large
        cut = rng.choice(["cut", "many", "large"]) if rng.random() < 0.05 else "cut"
        if cut == "cut":
            full = orjson.dumps({"v": 1, "readings": [{"dev": "zz", "ts": T0, "q": {V1: 1.0}}]})
            return TopicKind.TELEMETRY, full[:rng.randrange(1, len(full) - 1)], False
        if cut == "many":
            many = {"v": 1, "readings": [{}] * (MAX_READINGS_PER_ENVELOPE + 1)}
            return TopicKind.TELEMETRY, orjson.dumps(many), False
        return TopicKind.TELEMETRY, b'{"v":1,"readings":[],"pad":"' + b"x" * MAX_PAYLOAD_BYTES + b'"}', False
    if kind < 0.2:
        event = {"dev": f"{fleet.prefix}0", "ts": T0, "type": "tamper", "severity": "critical", "data": {}}
        event.update(rng.choice([{"type": "meteor"}, {"severity": "apocalyptic"}, {"ts": 2**63},
                                 {"data": {f"k{i}": i for i in range(17)}}, {"data": {"k": "x" * 257}},
                                 {"data": {"k": {"deep": [1]}}}, {"dev": other}, {"type": None}]))
        return TopicKind.EVENTS, _dumps({"v": 1, "events": [event]}), False
    readings = [_bad_reading(rng, f"{fleet.prefix}{rng.randrange(METERS)}", other)]
    with_good = rng.random() < 0.3
    if with_good:
        readings.insert(rng.randrange(2), fleet.good())
    return TopicKind.TELEMETRY, _dumps({"v": 1, "readings": readings}), with_good


def _publisher(broker_uri: str, name: str):
    return connect(BrokerAddress.parse(broker_uri), f"fuzz-{name}-{secrets.token_hex(3)}")


@pytest.mark.slow
def test_fuzzed_payloads_from_two_tenants_cost_no_good_reading(any_platform, broker_uri):
    platform, rng, n_bad = any_platform, random.Random(20261204), 10_000
    apis = {name: _tenant(platform, name) for name in ("alpha", "beta")}
    fleets = {"alpha": Fleet("a"), "beta": Fleet("b")}
    clients = {name: _publisher(broker_uri, name) for name in apis}
    rejected = dict.fromkeys(apis, 0)
    infos = []
    for i in range(n_bad):
        name = "alpha" if i % 2 else "beta"
        other = "b1" if name == "alpha" else "a1"
        kind, payload, _ = bad_payload(rng, fleets[name], other)
        infos.append(clients[name].publish(topic(name, kind, f"dia-{name}"), payload, qos=1))
        rejected[name] += 1
        if i % 25 == 0:  # good envelopes interleaved with the bad ones
            good = orjson.dumps({"v": 1, "readings": [fleets[name].good() for _ in range(5)]})
            infos.append(clients[name].publish(topic(name, TopicKind.TELEMETRY, f"dia-{name}"), good, qos=1))
    for info in infos:
        info.wait_for_publish(60)
    for name, api in apis.items():
        assert wait_for(lambda api=api, n=rejected[name]: api.get("/api/v1/metrics").json()["rejected"] >= n, 240), \
            api.get("/api/v1/metrics").json()
    time.sleep(0.5)
    for name, api in apis.items():
        metrics = api.get("/api/v1/metrics").json()
        assert metrics["rejected"] == rejected[name]  # every bad payload counted once, with a reason
        assert metrics["readings_stored"] == sum(map(len, fleets[name].expected.values()))
        for dev, stamps in fleets[name].expected.items():
            got = api.get(f"/api/v1/devices/{dev}/readings", params={"limit": 100_000}).json()["readings"]
            assert sorted(r["ts"] for r in got) == sorted(stamps), dev  # each good reading exactly once
            assert all(set(r["q"]) == {V1, P} for r in got)  # no unknown quantity reached the store
    assert httpx.get(f"{platform.url}/api/v1/health").status_code == 200
    for c in clients.values():
        c.disconnect()
        c.loop_stop()


@pytest.mark.slow
def test_a_poison_flood_from_one_tenant_does_not_stall_another(platform, broker_uri):
    alpha, beta = _tenant(platform, "alpha"), _tenant(platform, "beta")
    fleet = Fleet("b")
    attacker, victim = _publisher(broker_uri, "alpha"), _publisher(broker_uri, "beta")
    poison = orjson.dumps({"v": 1, "readings": [{"dev": "a1", "ts": 2**63, "seq": 2**63, "q": {V1: 1e308}}]})
    flood = [attacker.publish(topic("alpha", TopicKind.TELEMETRY, "dia-a"), poison, qos=1) for _ in range(3000)]
    started = time.monotonic()
    for _ in range(10):
        good = orjson.dumps({"v": 1, "readings": [fleet.good()]})
        victim.publish(topic("beta", TopicKind.TELEMETRY, "dia-b"), good, qos=1).wait_for_publish(10)
    assert wait_for(lambda: beta.get("/api/v1/metrics").json()["readings_stored"] == 10, 20)
    took = time.monotonic() - started
    for info in flood:
        info.wait_for_publish(30)
    assert wait_for(lambda: alpha.get("/api/v1/metrics").json()["rejected"] == 3000, 60)
    assert took < 15, f"tenant beta's 10 readings took {took:.1f} s behind alpha's flood"
    for c in (attacker, victim):
        c.disconnect()
        c.loop_stop()
