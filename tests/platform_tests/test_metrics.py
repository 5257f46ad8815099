"""Metrics in Prometheus text format: per ingest worker, through a real broker and a platform with two workers."""

from __future__ import annotations

import re
import secrets
import time

import httpx
import orjson

from gridloop.contract import BrokerAddress, topic
from gridloop.mqtt_client import connect, wait_for
from gridloop.platform.service import PlatformService

T0 = 1767225600000
SAMPLE = re.compile(r'^[a-z_:][a-z0-9_:]*(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+$')


def _parse(text: str) -> dict[str, float]:
    """Every sample line, checked against the exposition format; metric{labels} -> value."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# "):
            assert re.match(r"^# (HELP|TYPE) [a-z_]+ .+$", line), line
            continue
        assert SAMPLE.match(line), line
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def test_prometheus_metrics_per_worker(broker_uri, tmp_path):
    admin = "adm_" + secrets.token_hex(8)
    service = PlatformService(broker_uri, f"sqlite:///{tmp_path / 'store.db'}", port=0, admin_key=admin,
                              ingest_workers=2, ingest_group=f"ingest-{secrets.token_hex(4)}")
    with service:
        key = httpx.post(f"{service.url}/api/v1/tenants", json={"name": "prom"},
                         headers={"Authorization": f"Bearer {admin}"}).json()["api_key"]
        api = httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {key}"})
        assert api.post("/api/v1/devices", json=[{"id": f"m{i}", "type": "electricity_meter"}
                                                 for i in range(10)]).status_code == 201
        client = connect(BrokerAddress.parse(broker_uri), f"prom-pub-{time.monotonic_ns()}")
        for k in range(40):
            env = {"v": 1, "readings": [{"dev": f"m{i}", "ts": T0 + k * 10_000, "seq": k,
                                         "q": {"electricity.voltage.l1": 1.0}} for i in range(10)]}
            client.publish(topic("prom", "telemetry", "gw"), orjson.dumps(env), qos=1)
        client.publish(topic("prom", "telemetry", "gw"), b"not json", qos=1).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
        assert wait_for(lambda: api.get("/api/v1/metrics").json()["readings_stored"] == 400, 15)
        assert wait_for(lambda: api.get("/api/v1/metrics").json()["rejected"] == 1, 5)
        r = httpx.get(f"{service.url}/metrics", headers={"Authorization": f"Bearer {admin}"})  # the replica's
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        samples = _parse(r.text)
        for name in ("messages_total", "readings_stored_total", "readings_received_total", "rejected_total",
                     "queue_full_waits_total", "write_batches_total", "queue_depth", "degraded"):
            assert {f'gridloop_ingest_{name}{{worker="{w}"}}' for w in (0, 1)} <= samples.keys(), name
        assert samples['gridloop_ingest_readings_stored_total{worker="0"}'] + \
            samples['gridloop_ingest_readings_stored_total{worker="1"}'] == 400
        assert sum(samples[f'gridloop_ingest_rejected_total{{worker="{w}"}}'] for w in (0, 1)) == 1
        assert "# TYPE gridloop_ingest_queue_depth gauge" in r.text
        assert "# TYPE gridloop_ingest_messages_total counter" in r.text
        own = _parse(api.get("/metrics").text)  # the tenant's: its totals and its share of ingest, no worker's
        assert _parse(api.get("/api/v1/metrics", params={"format": "prometheus"}).text).keys() == own.keys()
        assert own['gridloop_readings_stored{tenant="prom"}'] == 400
        assert own['gridloop_rejected_messages{tenant="prom"}'] == 1
        assert own["gridloop_ingest_readings_stored_total"] == 400
        assert not any("worker=" in name for name in own)
        assert httpx.get(f"{service.url}/metrics").status_code == 401
        json_body = api.get("/api/v1/metrics").json()
        assert json_body["ingest"]["readings_stored"] == 400 and "queue_depth" not in json_body["ingest"]
        everything = httpx.get(f"{service.url}/api/v1/admin/metrics", headers={"Authorization": f"Bearer {admin}"})
        assert everything.json()["ingest"]["readings_stored"] == 400 and everything.json()["tenants"] == 1
        assert api.get("/api/v1/admin/metrics").status_code == 403  # a tenant's key sees no one else's traffic
