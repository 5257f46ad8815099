"""A small SDK for service developers: readings and events as they arrive, REST queries, commands.

It knows only the platform's public interfaces (MQTT topics and REST paths of the contract), so a
service written with it runs unchanged against a real deployment::

    from gridloop.sdk import PlatformSession

    with PlatformSession("http://127.0.0.1:8080", api_key, "mqtt://127.0.0.1:1883", tenant="lab") as p:
        p.on_readings(lambda r: print(r["dev"], r["q"].get("electricity.power.active.total")))
        p.on_events(lambda e: print("event", e["type"], e["dev"]))
        meters = [d["id"] for d in p.devices(type="electricity_meter")]
        cmd = p.send_command("sw1", "switch.open", wait_s=10)   # {"status": "executed", ...}
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import httpx
import orjson

from gridloop.contract import FINAL_STATUSES, BrokerAddress, parse_topic, topic
from gridloop.mqtt_client import connect

Reading = dict  # {"dev", "ts", "seq", "q": {quantity: value}}
EventDict = dict  # {"dev", "ts", "type", "severity", "data"}


class CommandFailed(RuntimeError):
    """A command ended in rejected, failed or expired, or did not end in time."""


class PlatformSession:
    """One tenant's view of the platform, over REST and (optionally) MQTT."""

    def __init__(self, api_url: str, api_key: str, broker: str | None = None, tenant: str | None = None,
                 credentials: tuple[str, str] | None = None) -> None:
        self._http = httpx.Client(base_url=api_url.rstrip("/"), headers={"Authorization": f"Bearer {api_key}"},
                                  timeout=30.0)
        self.tenant = tenant
        self._broker = BrokerAddress.parse(broker) if broker else None
        self._credentials = credentials
        self._reading_handlers: list[Callable[[Reading], None]] = []
        self._event_handlers: list[Callable[[EventDict], None]] = []
        self._mqtt = None
        self._lock = threading.Lock()

    # -- REST
    def _get(self, path: str, **params) -> dict | list:
        r = self._http.get(path, params={k: v for k, v in params.items() if v is not None})
        r.raise_for_status()
        return r.json()

    def devices(self, type: str | None = None) -> list[dict]:
        devices = self._get("/api/v1/devices")
        return [d for d in devices if type is None or d["type"] == type]

    def assets(self) -> list[dict]:
        return self._get("/api/v1/assets")  # type: ignore[return-value]

    def readings(self, device: str, quantity: str | None = None, start: int | str | None = None,
                 end: int | str | None = None, limit: int = 10_000) -> list[Reading]:
        doc = self._get(f"/api/v1/devices/{device}/readings", quantity=quantity, start=start, end=end, limit=limit)
        return doc["readings"]  # type: ignore[index]

    def events(self, device: str, start: int | str | None = None, end: int | str | None = None,
               type: str | None = None) -> list[EventDict]:
        return self._get(f"/api/v1/devices/{device}/events", start=start, end=end, type=type)["events"]  # type: ignore

    def send_command(self, device: str, name: str, args: dict | None = None, wait_s: float | None = None,
                     expires_in_s: float | None = None) -> dict:
        """Send a command; with ``wait_s`` wait for its final status and raise CommandFailed unless executed."""
        body: dict = {"name": name, "args": args or {}}
        if expires_in_s is not None:
            body["expires_in_s"] = expires_in_s
        r = self._http.post(f"/api/v1/devices/{device}/commands", json=body)
        if r.status_code >= 400:
            raise CommandFailed(f"{name} to {device} refused: {r.status_code} {r.text}")
        cid = r.json()["id"]
        if wait_s is None:
            return {"id": cid, "status": "pending"}
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            cmd = self._get(f"/api/v1/commands/{cid}")
            if cmd["status"] in FINAL_STATUSES:  # type: ignore[index]
                if cmd["status"] != "executed":  # type: ignore[index]
                    raise CommandFailed(f"{name} to {device}: {cmd['status']} ({cmd['detail']})")  # type: ignore
                return cmd  # type: ignore[return-value]
            time.sleep(0.02)
        raise CommandFailed(f"{name} to {device}: no final status within {wait_s} s")

    # -- MQTT
    def on_readings(self, handler: Callable[[Reading], None]) -> None:
        """Call handler(reading) for every reading of this tenant as it is published."""
        self._reading_handlers.append(handler)
        self._ensure_mqtt()

    def on_events(self, handler: Callable[[EventDict], None]) -> None:
        """Call handler(event) for every event of this tenant as it is published."""
        self._event_handlers.append(handler)
        self._ensure_mqtt()

    def _ensure_mqtt(self) -> None:
        with self._lock:
            if self._mqtt is not None:
                return
            if self._broker is None or self.tenant is None:
                raise ValueError("subscriptions need the broker URI and the tenant")
            user, password = self._credentials or (None, None)
            self._mqtt = connect(
                self._broker, f"gridloop-sdk-{uuid.uuid4().hex[:10]}", username=user, password=password,
                subscriptions=[(topic(self.tenant, "telemetry", "+"), 1), (topic(self.tenant, "events", "+"), 1)],
                on_message=self._dispatch,
            )

    def _dispatch(self, client, userdata, msg) -> None:
        parsed = parse_topic(msg.topic)
        if parsed is None:
            return
        try:
            doc = orjson.loads(msg.payload)
        except orjson.JSONDecodeError:
            return
        if parsed[1] == "telemetry":
            for r in doc.get("readings", ()):
                for h in self._reading_handlers:
                    h(r)
        elif parsed[1] == "events":
            for e in doc.get("events", ()):
                for h in self._event_handlers:
                    h(e)

    def close(self) -> None:
        if self._mqtt is not None:
            self._mqtt.disconnect()
            self._mqtt.loop_stop()
        self._http.close()

    def __enter__(self) -> PlatformSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
