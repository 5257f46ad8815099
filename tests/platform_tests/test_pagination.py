"""Lists are paginated with a cursor and never cut short silently: devices and assets (Link rel=next), events
(next_start), through the REST API and the SDK that follows the pages."""

from __future__ import annotations

import httpx
import orjson

from gridloop.contract import BrokerAddress, EventType, Severity, TopicKind, topic
from gridloop.mqtt_client import connect, wait_for
from gridloop.sdk import PlatformClient

T0 = 1_767_225_600_000


def _tenant(platform, name: str) -> str:
    r = httpx.post(f"{platform.url}/api/v1/tenants", json={"name": name},
                   headers={"Authorization": f"Bearer {platform.admin_key}"})
    assert r.status_code == 201, r.text
    return r.json()["api_key"]


def test_device_and_asset_lists_come_in_pages(platform):
    key = _tenant(platform, "alpha")
    api = httpx.Client(base_url=platform.url, headers={"Authorization": f"Bearer {key}"})
    ids = [f"m{i:05d}" for i in range(1203)]
    assert api.post("/api/v1/devices", json=[{"id": i, "type": "electricity_meter"} for i in ids]).status_code == 201
    first = api.get("/api/v1/devices", params={"limit": 500})
    assert [d["id"] for d in first.json()] == ids[:500]
    assert first.links["next"]["url"] == "/api/v1/devices?limit=500&after=m00499"
    seen, url = [], "/api/v1/devices?limit=500"
    while url:
        r = api.get(url)
        seen += [d["id"] for d in r.json()]
        url = r.links.get("next", {}).get("url")
    assert seen == ids  # every device once, in order
    assert "link" not in api.get("/api/v1/devices", params={"after": ids[-3]}).headers  # the last page says so
    assert [d.id for d in PlatformClient(platform.url, key).devices()] == ids  # default pages of 1,000
    for i in range(5):
        assert api.post("/api/v1/assets", json={"id": f"h{i}", "kind": "house"}).status_code == 201
    page = api.get("/api/v1/assets", params={"limit": 2, "after": "h1"})
    assert [a["id"] for a in page.json()] == ["h2", "h3"] and "after=h3" in page.links["next"]["url"]
    assert [a.id for a in PlatformClient(platform.url, key).assets()] == [f"h{i}" for i in range(5)]
    assert api.get("/api/v1/devices", params={"limit": 0}).status_code == 422
    assert api.get("/api/v1/devices", params={"limit": 10_001}).status_code == 422


def test_events_come_in_pages_cut_between_timestamps(platform, broker_uri):
    key = _tenant(platform, "alpha")
    api = httpx.Client(base_url=platform.url, headers={"Authorization": f"Bearer {key}"})
    assert api.post("/api/v1/devices", json={"id": "m1", "type": "electricity_meter"}).status_code == 201
    types = list(EventType)[:3]
    events = [{"dev": "m1", "ts": T0 + 1000 * (k // 3), "type": types[k % 3], "severity": Severity.INFO, "data": {}}
              for k in range(300)]  # three events at each of 100 timestamps
    client = connect(BrokerAddress.parse(broker_uri), "events-pub")
    for off in range(0, len(events), 100):
        client.publish(topic("alpha", TopicKind.EVENTS, "m1"), orjson.dumps({"v": 1, "events": events[off:off + 100]}),
                       qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    assert wait_for(lambda: len(api.get("/api/v1/devices/m1/events").json()["events"]) == 300, 10)
    page = api.get("/api/v1/devices/m1/events", params={"limit": 100}).json()
    # 100 rows reach into the 34th timestamp: the page ends before it, whole timestamps only
    assert len(page["events"]) == 99 and page["next_start"] == T0 + 33_000
    got, start = [], None
    while True:
        page = api.get("/api/v1/devices/m1/events", params={"limit": 100, "start": start}).json()
        got += [(e["ts"], e["type"]) for e in page["events"]]
        if page["next_start"] is None:
            break
        start = page["next_start"]
    assert got == [(e["ts"], e["type"]) for e in sorted(events, key=lambda e: (e["ts"], e["type"]))]
    assert len(PlatformClient(platform.url, key).events("m1")) == 300
    assert api.get("/api/v1/devices/m1/events", params={"limit": 1}).status_code == 422  # too small to progress
