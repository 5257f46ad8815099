"""Aggregates through the real interfaces: readings published over MQTT, aggregates read over REST, both stores."""

from __future__ import annotations

import time

import httpx
import numpy as np
import orjson

from gridloop.contract import BrokerAddress, topic
from gridloop.mqtt_client import connect, wait_for

T0 = 1767225600000  # 2026-01-01T00:00:00Z
Q = "electricity.power.active.total"


def _tenant(platform, name: str) -> httpx.Client:
    r = httpx.post(f"{platform.url}/api/v1/tenants", json={"name": name},
                   headers={"Authorization": f"Bearer {platform.admin_key}"})
    assert r.status_code == 201, r.text
    return httpx.Client(base_url=platform.url, headers={"Authorization": f"Bearer {r.json()['api_key']}"})


def _publish(broker_uri: str, tenant: str, device: str, payload: bytes) -> None:
    client = connect(BrokerAddress.parse(broker_uri), f"test-pub-{time.monotonic_ns()}")
    client.publish(topic(tenant, "telemetry", device), payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def _envelope(*readings: dict) -> bytes:
    return orjson.dumps({"v": 1, "readings": list(readings)})


def _setup(platform, broker_uri) -> tuple[httpx.Client, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Two meters of one house, 10 s readings over 50 minutes, the envelope delivered twice."""
    api = _tenant(platform, "alpha")
    assert api.post("/api/v1/assets", json={"id": "house-1", "kind": "house"}).status_code == 201
    r = api.post("/api/v1/devices", json=[{"id": d, "type": "electricity_meter", "asset": "house-1"}
                                          for d in ("m1", "m2")] + [{"id": "m3", "type": "electricity_meter"}])
    assert r.status_code == 201, r.text
    rng = np.random.default_rng(3)
    raw = {}
    readings = []
    for d in ("m1", "m2", "m3"):
        ts = T0 + 10_000 * np.arange(300, dtype=np.int64) + rng.integers(0, 9_000, 300)
        v = np.round(rng.normal(800, 300, 300), 3)
        raw[d] = (ts, v)
        readings += [{"dev": d, "ts": int(t), "seq": i, "q": {Q: float(x), "electricity.voltage.l1": 230.0}}
                     for i, (t, x) in enumerate(zip(ts, v, strict=True))]
    env = _envelope(*readings)
    _publish(broker_uri, "alpha", "dia-1", env)
    _publish(broker_uri, "alpha", "dia-1", env)  # redelivery must not double-count
    assert wait_for(lambda: api.get("/api/v1/metrics").json()["ingest"].get("readings_received", 0) == 1800, 30)
    assert api.get("/api/v1/metrics").json()["readings_stored"] == 900
    return api, raw


def _numpy(ts: np.ndarray, v: np.ndarray, width: int, agg: str) -> dict[int, tuple[float, int]]:
    keys = ts - ts % width
    out = {}
    for k in np.unique(keys):
        sel = keys == k
        x, t = v[sel], ts[sel]
        value = {"mean": x.mean(), "min": x.min(), "max": x.max(), "sum": x.sum(), "count": float(sel.sum()),
                 "last": x[t.argmax()]}[agg]
        out[int(k)] = (float(value), int(sel.sum()))
    return out


def _got(body: dict) -> dict[int, tuple[float, int]]:
    return {b["start"]: (b["value"], b["count"]) for b in body["buckets"]}


def _close(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for k, (value, count) in want.items():
        assert got[k][1] == count
        assert abs(got[k][0] - value) <= 1e-9 * max(1.0, abs(value)), (k, got[k], value)


def test_device_and_asset_aggregates_match_the_raw_readings(any_platform, broker_uri):
    api, raw = _setup(any_platform, broker_uri)
    span = {"start": "2026-01-01T00:00:00Z", "end": T0 + 3_600_000}
    for interval, width in (("1m", 60_000), ("5m", 300_000), ("15m", 900_000), ("1h", 3_600_000)):
        for agg in ("mean", "min", "max", "sum", "last", "count"):
            r = api.get("/api/v1/devices/m1/aggregates",
                        params={"quantity": Q, **span, "interval": interval, "agg": agg})
            assert r.status_code == 200, r.text
            _close(_got(r.json()), _numpy(*raw["m1"], width, agg))
            r = api.get("/api/v1/assets/house-1/aggregates",
                        params={"quantity": Q, **span, "interval": interval, "agg": agg})
            assert r.status_code == 200, r.text
            assert r.json()["devices"] == ["m1", "m2"]
            ts = np.concatenate([raw["m1"][0], raw["m2"][0]])
            v = np.concatenate([raw["m1"][1], raw["m2"][1]])
            _close(_got(r.json()), _numpy(ts, v, width, agg))
    body = api.get("/api/v1/devices/m2/aggregates", params={"quantity": Q, "start": T0 + 7 * 60_000 + 5,
                                                           "end": T0 + 20 * 60_000, "interval": "5m"}).json()
    assert [b["start"] - T0 for b in body["buckets"]] == [300_000, 600_000, 900_000]  # start aligned down
    assert body["buckets"][0]["start_iso"] == "2026-01-01T00:05:00Z"
    day = api.get("/api/v1/devices/m1/aggregates",
                  params={"quantity": Q, "start": T0, "end": T0 + 86_400_000, "interval": "1d", "agg": "count"})
    assert [(b["start"], b["value"], b["count"]) for b in day.json()["buckets"]] == [(T0, 300.0, 300)]


def test_aggregate_requests_are_checked(any_platform):
    api = _tenant(any_platform, "alpha")
    api.post("/api/v1/devices", json={"id": "m1", "type": "electricity_meter"})
    base = {"quantity": Q, "start": T0, "end": T0 + 31 * 86_400_000}
    r = api.get("/api/v1/devices/m1/aggregates", params={**base, "interval": "1m"})
    assert r.status_code == 422 and "at most 10000" in r.text
    assert api.get("/api/v1/devices/m1/aggregates", params={**base, "interval": "2m"}).status_code == 422
    assert api.get("/api/v1/devices/m1/aggregates", params={**base, "agg": "median"}).status_code == 422
    assert api.get("/api/v1/devices/m1/aggregates", params={**base, "end": T0 - 1}).status_code == 422
    ok = api.get("/api/v1/devices/m1/aggregates", params={**base, "interval": "1d"})
    assert ok.status_code == 200 and ok.json()["buckets"] == []
    assert "/api/v1/assets/{asset}/aggregates" in api.get("/openapi.json").json()["paths"]


def test_tenant_b_sees_none_of_tenant_a_aggregates(any_platform, broker_uri):
    alpha = _tenant(any_platform, "alpha")
    beta = _tenant(any_platform, "beta")
    alpha.post("/api/v1/assets", json={"id": "house-1", "kind": "house"})
    alpha.post("/api/v1/devices", json={"id": "a1", "type": "electricity_meter", "asset": "house-1"})
    _publish(broker_uri, "alpha", "dia-1", _envelope({"dev": "a1", "ts": T0, "seq": 1, "q": {Q: 5.0}}))
    params = {"quantity": Q, "start": T0, "end": T0 + 3_600_000, "interval": "1h", "agg": "sum"}
    assert wait_for(lambda: alpha.get("/api/v1/devices/a1/aggregates", params=params).json()["buckets"], 10)
    assert alpha.get("/api/v1/assets/house-1/aggregates", params=params).json()["buckets"][0]["value"] == 5.0
    assert beta.get("/api/v1/devices/a1/aggregates", params=params).status_code == 404
    assert beta.get("/api/v1/assets/house-1/aggregates", params=params).status_code == 404
    # beta's own asset of the same name sees only beta's devices: nothing
    beta.post("/api/v1/assets", json={"id": "house-1", "kind": "house"})
    body = beta.get("/api/v1/assets/house-1/aggregates", params=params).json()
    assert (body["devices"], body["buckets"]) == ([], [])
