"""Every route of the API tried by one tenant on another's resources, judged by what comes back and by what the
other tenant still has. The cases are checked against the app's own route list: a new route without a case here
fails this test."""

from __future__ import annotations

import httpx
import orjson
import pytest

from gridloop.contract import BrokerAddress, Quantity, TopicKind, topic
from gridloop.mqtt_client import connect, wait_for

T0 = 1_767_225_600_000
P = Quantity.POWER_ACTIVE_TOTAL.value
SECRET_WORDS = ("alpha", "a-meter", "a-switch", "a-house")  # alpha's names: none may show unasked
ABSENT = "zz-absent"


def _tenant(platform, name: str) -> httpx.Client:
    r = httpx.post(f"{platform.url}/api/v1/tenants", json={"name": name},
                   headers={"Authorization": f"Bearer {platform.admin_key}"})
    r.raise_for_status()
    return httpx.Client(base_url=platform.url, headers={"Authorization": f"Bearer {r.json()['api_key']}"}, timeout=30)


@pytest.fixture
def two_tenants(any_platform, broker_uri):
    """alpha with a meter (readings, an event), a switch (a command) and a house; beta with a meter of its own."""
    platform = any_platform
    alpha, beta = _tenant(platform, "alpha"), _tenant(platform, "beta")
    alpha.post("/api/v1/assets", json={"id": "a-house", "kind": "house"}).raise_for_status()
    alpha.post("/api/v1/devices", json=[
        {"id": "a-meter", "type": "electricity_meter", "asset": "a-house", "meta": {"interval_s": 60}},
        {"id": "a-switch", "type": "switch"}]).raise_for_status()
    beta.post("/api/v1/devices", json=[{"id": "b-meter", "type": "electricity_meter",
                                        "meta": {"interval_s": 60}}]).raise_for_status()
    client = connect(BrokerAddress.parse(broker_uri), "iso-dia")
    readings = {"v": 1, "readings": [{"dev": "a-meter", "ts": T0 + 60_000 * k, "q": {P: 100.0}} for k in range(5)]}
    events = {"v": 1, "events": [{"dev": "a-meter", "ts": T0, "type": "tamper", "severity": "critical"}]}
    client.publish(topic("alpha", TopicKind.TELEMETRY, "a-dia"), orjson.dumps(readings), qos=1).wait_for_publish(5)
    client.publish(topic("alpha", TopicKind.EVENTS, "a-dia"), orjson.dumps(events), qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    assert wait_for(lambda: alpha.get("/api/v1/metrics").json()["readings_stored"] == 5, 30)
    command = alpha.post("/api/v1/devices/a-switch/commands", json={"name": "switch.open"}).json()["id"]
    return platform, alpha, beta, command


def _alpha_is_intact(alpha: httpx.Client, command: str) -> None:
    device = alpha.get("/api/v1/devices/a-meter").json()
    assert (device["type"], device["asset"], device["meta"]) == ("electricity_meter", "a-house", {"interval_s": 60})
    assert alpha.get("/api/v1/devices/a-switch").status_code == 200
    assert len(alpha.get("/api/v1/devices/a-meter/readings").json()["readings"]) == 5
    assert alpha.get(f"/api/v1/commands/{command}").json()["device"] == "a-switch"


def _clean(r: httpx.Response) -> bool:
    return not any(word in r.text for word in SECRET_WORDS)


def _as_if_absent(call, alpha_id: str) -> bool:
    """Beta's request for alpha's resource answers exactly as for one that does not exist (404, same body)."""
    theirs, absent = call(alpha_id), call(ABSENT)
    return theirs.status_code == absent.status_code == 404 and theirs.text.replace(alpha_id, ABSENT) == absent.text


SPAN = {"start": T0 - 3_600_000, "end": T0 + 3_600_000}
AGG = {"quantity": P, "start": T0 - 3_600_000, "end": T0 + 3_600_000, "interval": "1h", "agg": "sum"}
CASES = {  # (method, path) -> beta's try on alpha's resources -> True if nothing of alpha's came through
    ("get", "/api/v1/health"): lambda b, c: b.get("/api/v1/health").status_code == 200,
    ("post", "/api/v1/tenants"): lambda b, c: b.post("/api/v1/tenants", json={"name": "gamma"}).status_code == 403,
    ("get", "/api/v1/metrics"): lambda b, c: (lambda m: m["readings_stored"] == 0 and m["rejected"] == 0
                                              and not m["ingest"].get("readings_stored"))(b.get("/api/v1/metrics")
                                                                                           .json()),
    ("get", "/metrics"): lambda b, c: _clean(r := b.get("/metrics")) and 'tenant="beta"} 0' in r.text,
    ("get", "/api/v1/admin/metrics"): lambda b, c: b.get("/api/v1/admin/metrics").status_code == 403,
    ("get", "/api/v1/devices"): lambda b, c: [d["id"] for d in b.get("/api/v1/devices").json()] == ["b-meter"],
    # ids are scoped per tenant: beta's own a-meter is created as if alpha's did not exist (alpha's is unchanged:
    # checked after the cases)
    ("post", "/api/v1/devices"): lambda b, c: b.post("/api/v1/devices", json={
        "id": "a-meter", "type": "gas_meter"}).status_code == 201,
    ("get", "/api/v1/devices/{device}"): lambda b, c: _as_if_absent(lambda d: b.get(f"/api/v1/devices/{d}"),
                                                                    "a-meter"),
    ("patch", "/api/v1/devices/{device}"): lambda b, c: _as_if_absent(
        lambda d: b.patch(f"/api/v1/devices/{d}", json={"asset": None}), "a-meter"),
    ("delete", "/api/v1/devices/{device}"): lambda b, c: _as_if_absent(lambda d: b.delete(f"/api/v1/devices/{d}"),
                                                                       "a-switch"),
    ("get", "/api/v1/assets"): lambda b, c: b.get("/api/v1/assets").json() == [],
    ("post", "/api/v1/assets"): lambda b, c: b.post("/api/v1/assets", json={
        "id": "b-house", "kind": "house", "parent": "a-house"}).status_code == 422,  # alpha's asset is no parent
    ("get", "/api/v1/assets/{asset}"): lambda b, c: _as_if_absent(lambda a: b.get(f"/api/v1/assets/{a}"),
                                                                  "a-house"),
    ("get", "/api/v1/assets/{asset}/aggregates"): lambda b, c: _as_if_absent(
        lambda a: b.get(f"/api/v1/assets/{a}/aggregates", params=AGG), "a-house"),
    ("get", "/api/v1/devices/{device}/readings"): lambda b, c: _as_if_absent(
        lambda d: b.get(f"/api/v1/devices/{d}/readings"), "a-meter"),
    ("get", "/api/v1/devices/{device}/aggregates"): lambda b, c: _as_if_absent(
        lambda d: b.get(f"/api/v1/devices/{d}/aggregates", params=AGG), "a-meter"),
    ("get", "/api/v1/devices/{device}/events"): lambda b, c: _as_if_absent(
        lambda d: b.get(f"/api/v1/devices/{d}/events"), "a-meter"),
    ("get", "/api/v1/completeness"): lambda b, c: [d["device"] for d in b.get(
        "/api/v1/completeness", params=SPAN).json()["devices"]] == ["b-meter"],
    ("post", "/api/v1/devices/{device}/commands"): lambda b, c: _as_if_absent(
        lambda d: b.post(f"/api/v1/devices/{d}/commands", json={"name": "switch.close"}), "a-switch"),
    ("get", "/api/v1/commands/{command_id}"): lambda b, c: _as_if_absent(lambda i: b.get(f"/api/v1/commands/{i}"), c),
}


def test_every_route_has_a_cross_tenant_case(platform):
    routes = {(method, path) for path, ops in platform.app.openapi()["paths"].items() for method in ops}
    assert routes == set(CASES), f"routes without a case: {routes - set(CASES)}; cases of no route: " \
                                 f"{set(CASES) - routes}"


def test_another_tenant_gets_nothing_of_alpha_on_any_route(two_tenants):
    _platform, alpha, beta, command = two_tenants
    failed = []
    for route, case in sorted(CASES.items()):
        if not case(beta, command):
            failed.append(route)
        _alpha_is_intact(alpha, command)  # and nothing beta did changed anything of alpha's
    assert not failed, f"beta got something of alpha's on {failed}"
