"""The platform through its real interfaces: MQTT in, REST out, commands round-trip via a real broker."""

from __future__ import annotations

import threading
import time

import httpx
import orjson
import pytest

from gridloop.contract import BrokerAddress, topic
from gridloop.mqtt_client import connect, wait_for

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
Q, Q2 = "electricity.power.active.total", "electricity.voltage.l1"


def _tenant(platform, name: str) -> httpx.Client:
    r = httpx.post(f"{platform.url}/api/v1/tenants", json={"name": name},
                   headers={"Authorization": f"Bearer {platform.admin_key}"})
    assert r.status_code == 201, r.text
    return httpx.Client(base_url=platform.url, headers={"Authorization": f"Bearer {r.json()['api_key']}"})


def _meters(api: httpx.Client, *ids: str) -> None:
    r = api.post("/api/v1/devices", json=[{"id": i, "type": "electricity_meter", "phases": 3,
                                           "meta": {"interval_s": 10}} for i in ids])
    assert r.status_code == 201, r.text


def _publish(broker_uri: str, tenant: str, device: str, payload: bytes) -> None:
    client = connect(BrokerAddress.parse(broker_uri), f"test-pub-{time.monotonic_ns()}")
    client.publish(topic(tenant, "telemetry", device), payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def _envelope(*readings: dict) -> bytes:
    return orjson.dumps({"v": 1, "readings": list(readings)})


def _stored(api: httpx.Client, device: str) -> list[dict]:
    return api.get(f"/api/v1/devices/{device}/readings").json()["readings"]


def test_health_needs_no_key_but_data_does(platform):
    assert httpx.get(f"{platform.url}/api/v1/health").json() == {"status": "ok", "store_available": True}
    assert httpx.get(f"{platform.url}/api/v1/devices").status_code == 401
    bad = httpx.get(f"{platform.url}/api/v1/devices", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


def test_same_envelope_twice_is_stored_once(platform, broker_uri):
    api = _tenant(platform, "alpha")
    _meters(api, "m1", "m2")
    env = _envelope(
        {"dev": "m1", "ts": 1767225610000, "seq": 1, "q": {"electricity.voltage.l1": 231.2}},
        {"dev": "m2", "ts": 1767225610000, "seq": 1, "q": {"electricity.voltage.l1": 229.0}},
    )
    _publish(broker_uri, "alpha", "dia-1", env)
    _publish(broker_uri, "alpha", "dia-1", env)
    assert wait_for(lambda: api.get("/api/v1/metrics").json()["ingest"].get("readings_received", 0) == 4, 10)
    assert [r["q"]["electricity.voltage.l1"] for r in _stored(api, "m1")] == [231.2]
    assert len(_stored(api, "m2")) == 1
    metrics = api.get("/api/v1/metrics").json()
    assert metrics["readings_stored"] == 2
    assert metrics["ingest"]["readings_duplicate"] == 2


def test_malformed_and_foreign_readings_are_rejected_with_reasons(platform, broker_uri):
    alpha = _tenant(platform, "alpha")
    beta = _tenant(platform, "beta")
    _meters(alpha, "a1")
    _meters(beta, "b1")
    _publish(broker_uri, "alpha", "dia-1", b"{not json")
    _publish(broker_uri, "alpha", "dia-1", _envelope(
        {"dev": "a1", "ts": T0 + 1000, "seq": 1, "q": {"electricity.voltage.l1": 230.0}},
        {"dev": "b1", "ts": T0 + 1000, "seq": 1, "q": {"electricity.voltage.l1": 230.0}},  # beta's meter
        {"dev": "zz", "ts": T0 + 1000, "seq": 1, "q": {"electricity.voltage.l1": 230.0}},  # unknown
        {"dev": "a1", "ts": T0 + 2000, "seq": 2, "q": {"electricity.voltage.l1": "high"}},  # non-numeric
        {"dev": "a1", "seq": 3, "q": {"electricity.voltage.l1": 1.0}},  # no ts
        {"dev": "a1", "ts": T0 + 2500, "seq": 3, "q": {"electricity.voltage": 1.0}},  # not a contract quantity
        {"dev": "a1", "ts": 2**63, "seq": 3, "q": {"electricity.voltage.l1": 1.0}},  # beyond int64
    ))
    # ingestion goes on after the bad messages
    _publish(broker_uri, "alpha", "dia-1", _envelope({"dev": "a1", "ts": T0 + 3000, "seq": 3, "q": {Q: 1.0}}))
    assert wait_for(lambda: len(_stored(alpha, "a1")) == 2, 10)
    assert wait_for(lambda: alpha.get("/api/v1/metrics").json()["rejected"] == 7, 10)
    reasons = [r[0] for r in platform.store._db.execute(
        "SELECT reason FROM rejected WHERE tenant='alpha' ORDER BY id").fetchall()]
    assert reasons[0].startswith("not valid JSON")
    assert any("readings[1]: unknown device 'b1'" in r for r in reasons)  # beta's: as unknown as an absent one
    assert any("unknown device 'zz'" in r for r in reasons)
    assert any("readings[3]: Expected `float`, got `str`" in r for r in reasons)
    assert any("readings[4]: Object missing required field `ts`" in r for r in reasons)
    assert any("readings[5]: Invalid enum value 'electricity.voltage'" in r for r in reasons)
    assert any("readings[6]:" in r and "$.ts" in r for r in reasons)
    assert _stored(beta, "b1") == []


def test_tenant_b_sees_nothing_of_tenant_a(platform, broker_uri):
    alpha = _tenant(platform, "alpha")
    beta = _tenant(platform, "beta")
    _meters(alpha, "a1")
    _publish(broker_uri, "alpha", "dia-1", _envelope({"dev": "a1", "ts": T0 + 1000, "seq": 1, "q": {Q: 1.0}}))
    assert wait_for(lambda: len(_stored(alpha, "a1")) == 1, 10)
    assert [d["id"] for d in beta.get("/api/v1/devices").json()] == []
    for path in ("/api/v1/devices/a1", "/api/v1/devices/a1/readings", "/api/v1/devices/a1/events"):
        assert beta.get(path).status_code == 404, path
    assert beta.post("/api/v1/devices/a1/commands", json={"name": "switch.open"}).status_code == 404
    assert beta.delete("/api/v1/devices/a1").status_code == 404
    # beta's own a1 is another device: provisioning and publishing it changes nothing of alpha's
    assert beta.post("/api/v1/devices", json={"id": "a1", "type": "electricity_meter"}).status_code == 201
    _publish(broker_uri, "beta", "dia-9", _envelope({"dev": "a1", "ts": T0 + 1000, "seq": 7, "q": {Q: 2.0}},
                                                    {"dev": "a1", "ts": T0 + 2000, "seq": 8, "q": {Q: 3.0}}))
    assert wait_for(lambda: len(_stored(beta, "a1")) == 2, 10)
    assert [r["q"][Q] for r in _stored(alpha, "a1")] == [1.0] and [r["q"][Q] for r in _stored(beta, "a1")] == [2.0, 3.0]


def test_a_device_behind_a_gateway_is_published_for_only_by_that_gateway(platform, broker_uri):
    """Another credential of the same tenant cannot pre-fill (first one wins) the readings of a gatewayed meter."""
    api = _tenant(platform, "alpha")
    r = api.post("/api/v1/devices", json=[{"id": "g1", "type": "electricity_meter", "gateway": "dia-1"},
                                          {"id": "free", "type": "electricity_meter"}])
    assert r.status_code == 201, r.text
    _publish(broker_uri, "alpha", "dia-2", _envelope({"dev": "g1", "ts": T0 + 1000, "seq": 1, "q": {Q: 666.0}},
                                                     {"dev": "free", "ts": T0 + 1000, "seq": 1, "q": {Q: 1.0}}))
    assert wait_for(lambda: len(_stored(api, "free")) == 1, 10)
    _publish(broker_uri, "alpha", "dia-1", _envelope({"dev": "g1", "ts": T0 + 1000, "seq": 1, "q": {Q: 5.0}}))
    _publish(broker_uri, "alpha", "g1", _envelope({"dev": "g1", "ts": T0 + 2000, "seq": 2, "q": {Q: 6.0}}))  # itself
    assert wait_for(lambda: len(_stored(api, "g1")) == 2, 10)
    assert [r["q"][Q] for r in _stored(api, "g1")] == [5.0, 6.0]  # dia-2's 666 was never stored
    reasons = [r[0] for r in platform.store._db.execute("SELECT reason FROM rejected WHERE tenant='alpha'")]
    assert reasons == ["readings[0]: device 'g1' is registered behind gateway 'dia-1', not 'dia-2'"]


def test_readings_filter_by_quantity_and_time(platform, broker_uri):
    api = _tenant(platform, "alpha")
    _meters(api, "m1")
    _publish(broker_uri, "alpha", "dia-1", _envelope(*[
        {"dev": "m1", "ts": 1767225600000 + 10_000 * k, "seq": k, "q": {Q: float(k), Q2: -1.0}}
        for k in range(10)
    ]))
    assert wait_for(lambda: len(_stored(api, "m1")) == 10, 10)
    r = api.get("/api/v1/devices/m1/readings",
                params={"quantity": Q, "start": "2026-01-01T00:00:20Z", "end": 1767225600000 + 50_000, "limit": 2})
    assert r.status_code == 200
    assert [(x["ts"] - 1767225600000, x["q"]) for x in r.json()["readings"]] == [(20_000, {Q: 2.0}),
                                                                                 (30_000, {Q: 3.0})]
    assert api.get("/api/v1/devices/m1/readings", params={"start": "yesterday"}).status_code == 422
    c = api.get("/api/v1/completeness", params={"start": 1767225600000, "end": 1767225600000 + 200_000}).json()
    assert c == {"start": 1767225600000, "end": 1767225600000 + 200_000,
                 "devices": [{"device": "m1", "expected": 20, "received": 10, "ratio": 0.5}]}


def _device_that_obeys(broker_uri: str, tenant: str, device: str, stop: threading.Event) -> threading.Thread:
    """A real MQTT device: answers accepted, then executed, to every command it gets."""
    def run() -> None:
        client = connect(BrokerAddress.parse(broker_uri), f"dev-{device}")

        def on_message(c, u, msg):
            cmd = orjson.loads(msg.payload)
            for status in ("accepted", "executed"):
                c.publish(topic(tenant, "responses", device),
                          orjson.dumps({"v": 1, "id": cmd["id"], "ts": T0, "status": status, "detail": "ok"}), qos=1)

        client.on_message = on_message
        client.subscribe(topic(tenant, "commands", device), qos=1)
        stop.wait(20)
        client.disconnect()
        client.loop_stop()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_command_lifecycle_through_a_real_device(platform, broker_uri):
    api = _tenant(platform, "alpha")
    api.post("/api/v1/devices", json={"id": "sw1", "type": "switch"})
    stop = threading.Event()
    _device_that_obeys(broker_uri, "alpha", "sw1", stop)
    time.sleep(0.3)
    r = api.post("/api/v1/devices/sw1/commands", json={"name": "switch.open"})
    assert r.status_code == 202
    cid = r.json()["id"]
    assert wait_for(lambda: api.get(f"/api/v1/commands/{cid}").json()["status"] == "executed", 10)
    history = [s for s, _ in api.get(f"/api/v1/commands/{cid}").json()["history"]]
    assert history == ["pending", "sent", "accepted", "executed"]
    stop.set()


@pytest.mark.parametrize(("body", "why"), [
    ({"name": "switch.explode"}, "unknown command"),
    ({"name": "storage.setpoint", "args": {}}, "missing argument"),
    ({"name": "storage.setpoint", "args": {"p_kw": 1, "x": 2}}, "unexpected argument"),
    ({"name": "load.curtail", "args": {"limit_kw": 1.0, "duration_s": 1.5}}, "duration_s"),
    ({"name": "storage.setpoint", "args": {"p_kw": 1e300}}, "p_kw"),
    ({"name": "storage.setpoint", "args": {"p_kw": True}}, "valid number"),
    ({"name": "switch.open", "expires": 2**63}, "expires"),
    ({"name": "switch.open", "expires_in_s": 1e300}, "expires_in_s"),
])
def test_bad_commands_are_refused_by_the_api(platform, body, why):
    api = _tenant(platform, "alpha")
    api.post("/api/v1/devices", json={"id": "sw1", "type": "switch"})
    r = api.post("/api/v1/devices/sw1/commands", json=body)
    assert r.status_code == 422
    assert why in r.text
    assert api.post("/api/v1/devices/nope/commands", json={"name": "switch.open"}).status_code == 404


def test_unanswered_command_expires(platform):
    api = _tenant(platform, "alpha")
    api.post("/api/v1/devices", json={"id": "sw9", "type": "switch"})
    cid = api.post("/api/v1/devices/sw9/commands", json={"name": "switch.close", "expires_in_s": 0.5}).json()["id"]
    assert wait_for(lambda: api.get(f"/api/v1/commands/{cid}").json()["status"] == "expired", 10)
