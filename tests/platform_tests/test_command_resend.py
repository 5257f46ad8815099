"""Commands to an offline device wait, and go out again when it is back online: real broker, real paho device."""

from __future__ import annotations

import time

import httpx

from gridloop.mqtt_client import wait_for


def _tenant_with_device(platform, name: str, device: str) -> httpx.Client:
    r = httpx.post(f"{platform.url}/api/v1/tenants", json={"name": name},
                   headers={"Authorization": f"Bearer {platform.admin_key}"})
    assert r.status_code == 201, r.text
    api = httpx.Client(base_url=platform.url, headers={"Authorization": f"Bearer {r.json()['api_key']}"})
    assert api.post("/api/v1/devices", json={"id": device, "type": "switch"}).status_code == 201
    return api


def _status(api: httpx.Client, cid: str) -> str:
    return api.get(f"/api/v1/commands/{cid}").json()["status"]


def test_open_commands_are_resent_when_the_device_comes_back_online(platform, broker_uri, paho_device):
    api = _tenant_with_device(platform, "resend", "sw1")
    dev = paho_device(broker_uri, "resend", "sw1")
    try:
        # sent while nobody listened (lost on the way): goes out again on the next offline -> online
        lost = api.post("/api/v1/devices/sw1/commands", json={"name": "switch.open"}).json()["id"]
        assert wait_for(lambda: _status(api, lost) == "sent", 5)
        dev.status("offline")
        assert wait_for(lambda: api.get("/api/v1/devices/sw1").json()["status"] == "offline", 5)
        assert wait_for(lambda: platform.dispatcher._status.get(("resend", "sw1")) == "offline", 5)
        held = api.post("/api/v1/devices/sw1/commands", json={"name": "switch.close"}).json()["id"]
        expiring = api.post("/api/v1/devices/sw1/commands",
                            json={"name": "load.release", "expires_in_s": 0.3}).json()["id"]
        time.sleep(0.5)
        assert _status(api, held) == "pending"  # not published to an offline device
        assert wait_for(lambda: _status(api, expiring) == "expired", 5)
        dev.listen()
        time.sleep(0.3)
        assert dev.received == []  # nothing was queued for the offline device
        dev.status("online")
        assert wait_for(lambda: set(dev.received) >= {lost, held}, 5), dev.received
        time.sleep(0.3)
        assert expiring not in dev.received  # expired commands are not re-sent
        assert _status(api, held) == "sent"
        assert [s for s, _ in api.get(f"/api/v1/commands/{held}").json()["history"]] == ["pending", "sent"]
        # online again: a new command goes out at once
        now = api.post("/api/v1/devices/sw1/commands", json={"name": "switch.open"}).json()["id"]
        assert wait_for(lambda: now in dev.received, 5)
    finally:
        dev.close()
