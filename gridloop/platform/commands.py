"""Command dispatch: publish commands to devices, follow their responses, expire the stale ones."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import orjson
import paho.mqtt.client as mqtt

from gridloop.contract import FINAL_STATUSES, BrokerAddress, parse_topic, topic
from gridloop.mqtt_client import connect
from gridloop.platform.store.base import CommandRecord, Store

log = logging.getLogger(__name__)

# command name -> allowed argument names and types; extra arguments are an error
COMMAND_ARGS: dict[str, dict[str, type]] = {
    "switch.open": {},
    "switch.close": {},
    "storage.setpoint": {"p_kw": float},
    "load.curtail": {"limit_kw": float, "duration_s": int},
    "load.release": {},
    "tap.set": {"position": int},
}
RESPONSE_STATUSES = ("accepted", "executed", "rejected", "failed")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def check_command(name: str, args: dict) -> str | None:
    """Why a command cannot be sent as given, or None if its name and arguments are well-formed."""
    spec = COMMAND_ARGS.get(name)
    if spec is None:
        return f"unknown command {name!r}; known: {', '.join(sorted(COMMAND_ARGS))}"
    if extra := sorted(set(args) - set(spec)):
        return f"unexpected argument(s) for {name}: {', '.join(extra)}"
    if missing := sorted(set(spec) - set(args)):
        return f"missing argument(s) for {name}: {', '.join(missing)}"
    for key, kind in spec.items():
        value = args[key]
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if kind is int:
            ok = ok and float(value).is_integer()
        if not ok:
            return f"argument {key} of {name} must be a number{' (whole)' if kind is int else ''}"
    return None


class CommandDispatcher:
    """Sends commands on the contract's command topics and records every response."""

    def __init__(self, store: Store, broker: BrokerAddress, credentials: tuple[str, str] | None = None) -> None:
        self.store = store
        self.broker = broker
        self._credentials = credentials
        self._client: mqtt.Client | None = None
        self._stop = threading.Event()
        self._expirer = threading.Thread(target=self._expire_loop, name="command-expiry", daemon=True)
        self._status: dict[tuple[str, str], str] = {}  # (tenant, device) -> online/offline, from the status topic
        self._lock = threading.Lock()  # a status change and a submit never interleave: no command is left behind
        self.resent = 0

    def start(self) -> None:
        user, password = self._credentials or (None, None)
        self._client = connect(self.broker, f"gridloop-commands-{uuid.uuid4().hex[:8]}", username=user,
                               password=password,
                               subscriptions=[("gridloop/v1/+/responses/+", 1), ("gridloop/v1/+/status/+", 1)],
                               on_message=self._on_message)
        self._expirer.start()

    def submit(self, tenant: str, device: str, name: str, args: dict, expires: int | None) -> CommandRecord:
        """Record a new command as pending, then publish it (it becomes sent) unless the device is offline."""
        ts = now_ms()
        record = CommandRecord(
            tenant=tenant, id=str(uuid.uuid4()), device=device, name=name, args=args, ts=ts, expires=expires,
            status="pending", updated=ts, history=[["pending", ts]],
        )
        with self._lock:
            self.store.put_command(record)
            if self._device_status(tenant, device) != "offline":
                self._publish(record)
        return record

    def _device_status(self, tenant: str, device: str) -> str:
        status = self._status.get((tenant, device))
        if status is None:
            stored = self.store.get_device(tenant, device)
            status = stored.status if stored is not None else "unknown"
        return status

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        parsed = parse_topic(msg.topic)
        if parsed is not None and parsed[1] == "status":
            self._on_status(parsed[0], parsed[2], msg.payload.decode(errors="replace").strip('"'), bool(msg.retain))
        else:
            self._on_response(client, userdata, msg)

    def _on_status(self, tenant: str, device: str, status: str, retained: bool) -> None:
        """A device back online gets its open, unexpired commands again (pending ones only if seen retained)."""
        if status not in ("online", "offline") or self.store.owner_of(device) != tenant:
            return
        with self._lock:
            before = self._status.get((tenant, device))
            self._status[(tenant, device)] = status
            if status != "online" or before == "online":
                return
            # a live offline -> online transition: what was sent meanwhile may be lost; a retained 'online'
            # seen at start-up says nothing about that, so only the never-sent (pending) ones go out then
            resend = ("pending",) if retained or before is None else ("pending", "sent")
            now = now_ms()
            for c in self.store.open_commands():
                if (c.tenant == tenant and c.device == device and c.status in resend
                        and (c.expires is None or c.expires > now)):
                    self._publish(c)
                    self.resent += 1

    def _publish(self, record: CommandRecord) -> None:
        payload = orjson.dumps(
            {"v": 1, "id": record.id, "ts": record.ts, "name": record.name, "args": record.args,
             "expires": record.expires}
        )
        if self._client is None:
            return
        info = self._client.publish(topic(record.tenant, "commands", record.device), payload, qos=1)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            self.store.update_command(record.tenant, record.id, "sent", "", now_ms())
            record.status = "sent"

    def _on_response(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        parsed = parse_topic(msg.topic)
        if parsed is None:
            return
        tenant, _, device = parsed
        try:
            doc = orjson.loads(msg.payload)
            cid, status = doc["id"], doc["status"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.store.add_rejected(tenant, msg.topic, "malformed command response", msg.payload)
            return
        current = self.store.get_command(tenant, str(cid))
        if current is None or current.device != device or status not in RESPONSE_STATUSES:
            self.store.add_rejected(tenant, msg.topic, "response to an unknown command or bad status", msg.payload)
            return
        if current.status in FINAL_STATUSES:
            return  # a late 'accepted' must not reopen an executed command
        self.store.update_command(tenant, current.id, status, str(doc.get("detail", "")), now_ms())

    def _expire_loop(self) -> None:
        while not self._stop.wait(0.5):
            now = now_ms()
            for c in self.store.open_commands():
                if c.expires is not None and c.expires < now and c.status in ("pending", "sent"):
                    self.store.update_command(c.tenant, c.id, "expired", "not accepted before it expired", now)

    def stop(self) -> None:
        self._stop.set()
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
