"""A small SDK for service developers and gridloop's own tools: typed REST calls, readings and events as they arrive.

It knows only the platform's public interfaces (the contract's MQTT topics and REST paths), so a service written
with it runs unchanged against a real deployment::

    from gridloop.contract import CommandName, DeviceType, Quantity
    from gridloop.sdk import PlatformSession

    with PlatformSession("http://127.0.0.1:8080", api_key, "mqtt://127.0.0.1:1883", tenant="lab") as p:
        p.on_readings(lambda r: print(r.dev, r.q.get(Quantity.POWER_ACTIVE_TOTAL)))
        p.on_events(lambda e: print("event", e.type, e.dev))
        meters = [d.id for d in p.devices(type=DeviceType.ELECTRICITY_METER)]
        cmd = p.send_command("sw1", CommandName.SWITCH_OPEN, wait_s=10)   # a rest.Command, status executed
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable

import httpx
from pydantic import TypeAdapter

from gridloop.contract import (
    FINAL_STATUSES,
    BrokerAddress,
    CommandStatus,
    DeviceType,
    Event,
    Reading,
    Rejected,
    TopicKind,
    parse_topic,
    rest,
    topic,
)
from gridloop.contract import events as wire_events
from gridloop.contract import telemetry as wire_telemetry
from gridloop.mqtt_client import connect

API = rest.API_PREFIX
PROVISION_BATCH = 5000
_devices = TypeAdapter(list[rest.Device])
_assets = TypeAdapter(list[rest.Asset])


class PlatformError(RuntimeError):
    """The platform answered something the caller cannot work with (the status and body are in the message)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when the platform answered one


class CommandFailed(RuntimeError):
    """A command was refused, ended in rejected, failed or expired, or did not end in time."""


class PlatformClient:
    """The contract's REST paths as typed calls, authenticated with one tenant's API key (or the admin key)."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key or ""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # no Nagle: httpx writes a request's head and body apart, and the body would wait for the server's
        # delayed ACK of the head (40 ms a POST on Linux)
        # plain http has no certificates to check: not loading the CA bundle saves ~40 ms a client
        transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
                                        verify=not self.base_url.startswith("http://"))
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport)

    def _call(self, method: str, path: str, *, params: dict | None = None, json: object = None,
              headers: dict | None = None) -> httpx.Response:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        r = self._http.request(method, API + path, params=query, json=json, headers=headers)
        if r.status_code >= 400:
            raise PlatformError(f"{method} {API}{path}: {r.status_code} {r.text[:300]}", r.status_code)
        return r

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self._http.get(f"{API}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise PlatformError(f"platform at {self.base_url} is not healthy after {timeout_s:.0f} s")

    def create_tenant(self, name: str, admin_key: str) -> str:
        """A new tenant's API key (needs the platform's admin key)."""
        r = self._call("POST", "/tenants", json={"name": name}, headers={"Authorization": f"Bearer {admin_key}"})
        return rest.TenantCreated.model_validate_json(r.content).api_key

    def provision(self, devices: Iterable[rest.DeviceIn | dict]) -> int:
        """Register devices (checked against the contract here first, so a bad one names itself)."""
        checked = [d if isinstance(d, rest.DeviceIn) else rest.DeviceIn.model_validate(d) for d in devices]
        for lo in range(0, len(checked), PROVISION_BATCH):
            body = [d.model_dump(mode="json", exclude_none=True) for d in checked[lo:lo + PROVISION_BATCH]]
            self._call("POST", "/devices", json=body)
        return len(checked)

    def create_asset(self, asset: rest.AssetIn | dict) -> None:
        checked = asset if isinstance(asset, rest.AssetIn) else rest.AssetIn.model_validate(asset)
        self._call("POST", "/assets", json=checked.model_dump(mode="json", exclude_none=True))

    def devices(self, type: DeviceType | None = None) -> list[rest.Device]:
        """All the tenant's devices (of one type), following the platform's pages."""
        return [d for d in self._all_pages("/devices", _devices) if type is None or d.type == type]

    def assets(self) -> list[rest.Asset]:
        return self._all_pages("/assets", _assets)

    def _all_pages(self, path: str, adapter: TypeAdapter) -> list:
        out, params = [], {}
        while True:
            r = self._call("GET", path, params=params)
            out += adapter.validate_json(r.content)
            following = r.links.get("next", {}).get("url")
            if not following:
                return out
            params = dict(httpx.URL(following).params)

    def readings(self, device: str, quantity: str | None = None, start: int | str | None = None,
                 end: int | str | None = None, limit: int = 10_000) -> list[rest.ReadingOut]:
        """Up to ``limit`` readings, time-ordered, following the platform's ``next_start`` pages."""
        out: list[rest.ReadingOut] = []
        while len(out) < limit:
            params = {"quantity": quantity, "start": start, "end": end, "limit": limit - len(out)}
            page = rest.Readings.model_validate_json(self._call("GET", f"/devices/{device}/readings",
                                                                params=params).content)
            out += page.readings
            if page.next_start is None:
                break
            start = page.next_start
        return out

    def events(self, device: str, start: int | str | None = None, end: int | str | None = None,
               type: str | None = None) -> list[rest.EventOut]:
        out: list[rest.EventOut] = []
        while True:
            r = self._call("GET", f"/devices/{device}/events", params={"start": start, "end": end, "type": type})
            page = rest.Events.model_validate_json(r.content)
            out += page.events
            if page.next_start is None:
                return out
            start = page.next_start

    def send_command(self, device: str, name: str, args: dict | None = None,
                     expires_in_s: float | None = None) -> str:
        """The new command's id; CommandFailed with the platform's reason if it was refused."""
        body = rest.CommandIn(name=name, args=args or {}, expires_in_s=expires_in_s)
        try:
            r = self._call("POST", f"/devices/{device}/commands", json=body.model_dump(exclude_none=True))
        except PlatformError as exc:
            raise CommandFailed(f"{name} to {device} refused: {exc}") from None
        return rest.CommandAccepted.model_validate_json(r.content).id

    def command(self, command_id: str) -> rest.Command:
        return rest.Command.model_validate_json(self._call("GET", f"/commands/{command_id}").content)

    def wait_command(self, command_id: str, wait_s: float, poll_s: float = 0.02) -> rest.Command:
        """The command once final; CommandFailed unless it was executed, or if it is not final in time."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            cmd = self.command(command_id)
            if cmd.status in FINAL_STATUSES:
                if cmd.status != CommandStatus.EXECUTED:
                    raise CommandFailed(f"{cmd.name} to {cmd.device}: {cmd.status} ({cmd.detail})")
                return cmd
            time.sleep(poll_s)
        raise CommandFailed(f"command {command_id}: no final status within {wait_s} s")

    def metrics(self) -> rest.Metrics:
        return rest.Metrics.model_validate_json(self._call("GET", "/metrics").content)

    def aggregates(self, quantity: str, start: int | str, end: int | str, *, device: str | None = None,
                   asset: str | None = None, interval: str = "15m", agg: str = "mean",
                   tz: str | None = None) -> rest.Aggregates:
        """One quantity per interval of one device or of an asset's devices; days and months (``1d``, ``1mo``) in
        the IANA time zone ``tz`` if given (local midnights: 23 h and 25 h days when daylight saving time changes)."""
        if (device is None) == (asset is None):
            raise ValueError("give one of device and asset")
        path = f"/devices/{device}/aggregates" if device is not None else f"/assets/{asset}/aggregates"
        params = {"quantity": quantity, "start": start, "end": end, "interval": interval, "agg": agg, "tz": tz}
        return rest.Aggregates.model_validate_json(self._call("GET", path, params=params).content)

    def completeness(self, start_ms: int, end_ms: int) -> rest.Completeness:
        r = self._call("GET", "/completeness", params={"start": start_ms, "end": end_ms})
        return rest.Completeness.model_validate_json(r.content)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PlatformSession(PlatformClient):
    """One tenant's view of the platform: the REST client plus its readings and events over MQTT."""

    def __init__(self, api_url: str, api_key: str, broker: str | None = None, tenant: str | None = None,
                 credentials: tuple[str, str] | None = None, gateway: str | None = None) -> None:
        """``gateway``: hear only the readings and events that gateway (a DIA) publishes, not the tenant's all (a
        service of one substation among many)."""
        super().__init__(api_url, api_key)
        self.tenant = tenant
        self.gateway = gateway
        self._broker = BrokerAddress.parse(broker) if broker else None
        self._credentials = credentials
        self._reading_handlers: list[Callable[[Reading], None]] = []
        self._event_handlers: list[Callable[[Event], None]] = []
        self._mqtt = None
        self._lock = threading.Lock()

    def send_command(self, device: str, name: str, args: dict | None = None,  # type: ignore[override]
                     wait_s: float | None = None, expires_in_s: float | None = None) -> str | rest.Command:
        """The command id; with ``wait_s`` the executed command (CommandFailed otherwise)."""
        command_id = super().send_command(device, name, args, expires_in_s)
        return command_id if wait_s is None else self.wait_command(command_id, wait_s)

    def on_readings(self, handler: Callable[[Reading], None]) -> None:
        """Call handler(reading) for every valid reading of this tenant as it is published."""
        self._reading_handlers.append(handler)
        self._ensure_mqtt()

    def on_events(self, handler: Callable[[Event], None]) -> None:
        """Call handler(event) for every valid event of this tenant as it is published."""
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
                subscriptions=[(topic(self.tenant, TopicKind.TELEMETRY, self.gateway or "+"), 1),
                               (topic(self.tenant, TopicKind.EVENTS, self.gateway or "+"), 1)],
                on_message=self._dispatch,
            )

    def _dispatch(self, client, userdata, msg) -> None:
        """Hand valid readings and events to the handlers; what breaks the contract is dropped here too."""
        parsed = parse_topic(msg.topic)
        if parsed is None:
            return
        try:
            if parsed[1] == TopicKind.TELEMETRY:
                for r in wire_telemetry.decode_readings(msg.payload).readings:
                    for h in self._reading_handlers:
                        h(r)
            elif parsed[1] == TopicKind.EVENTS:
                for e in wire_events.decode_events(msg.payload)[0]:
                    for h in self._event_handlers:
                        h(e)
        except Rejected:
            return

    def close(self) -> None:
        if self._mqtt is not None:
            self._mqtt.disconnect()
            self._mqtt.loop_stop()
        super().close()
