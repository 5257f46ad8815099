"""Commands as the page shows them: heard on the tenant's command and response topics, completed from the REST API.

The broker tells when a command was sent and what the device answered; the platform's ``GET /commands/{id}``
adds when it was created (pending) and its own record of each transition. Nothing here runs on the step loop.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import msgspec

from gridloop.contract import (
    FINAL_STATUSES,
    BrokerAddress,
    CommandStatus,
    InvalidCommand,
    TopicKind,
    parse_topic,
    topic,
)
from gridloop.contract import commands as wire
from gridloop.mqtt_client import TlsFiles, connect
from gridloop.sdk import PlatformClient, PlatformError

log = logging.getLogger(__name__)
MAX_SHOWN = 200  # the page's timeline keeps the latest commands only


class CommandView(msgspec.Struct):
    """One command's lifecycle: ``history`` holds (status, Unix ms) in the order they happened."""

    id: str
    device: str
    name: str
    args: dict
    status: str
    detail: str = ""
    history: list[tuple[str, int]] = msgspec.field(default_factory=list)
    sim_ms: int | None = None  # the simulated instant it was first seen at

    def advance(self, status: str, ts_ms: int, detail: str = "") -> None:
        """Record a transition unless it is already known (a QoS 1 redelivery, or REST told it first)."""
        if any(s == status for s, _ in self.history):
            return
        self.history.append((status, ts_ms))
        self.history.sort(key=lambda h: h[1])
        if self.status not in FINAL_STATUSES:
            self.status, self.detail = status, detail or self.detail


class CommandTimeline:
    """Every command of the tenant, in the order first seen; thread-safe (MQTT thread in, hub thread out)."""

    def __init__(self, now_sim_ms=lambda: None) -> None:
        self._now_sim_ms = now_sim_ms
        self._lock = threading.Lock()
        self._commands: dict[str, CommandView] = {}
        self._to_complete: set[str] = set()  # seen on MQTT, not yet read from the platform
        self.version = 0  # bumped at every change, so the hub frames only what is new
        self._client = None
        self._api: PlatformClient | None = None

    def listen(self, broker: BrokerAddress, tenant: str, api: PlatformClient, tls: TlsFiles | None = None,
               credentials: tuple[str, str] | None = None) -> None:
        """Subscribe to the tenant's commands and responses; ``api`` completes each lifecycle from the platform."""
        self._api = api
        user, password = credentials or (None, None)
        self._client = connect(broker, f"gridloop-view-{tenant}-{uuid.uuid4().hex[:6]}",
                               subscriptions=[(topic(tenant, TopicKind.COMMANDS, "+"), 1),
                                              (topic(tenant, TopicKind.RESPONSES, "+"), 1)],
                               on_message=self._on_message, tls=tls, username=user, password=password)

    def add(self, view: CommandView) -> None:
        """A command known from elsewhere (a finished run's commands.json, a command the page sent)."""
        with self._lock:
            self._commands.setdefault(view.id, view)
            self.version += 1

    def _on_message(self, client, userdata, msg) -> None:
        parsed = parse_topic(msg.topic)
        if parsed is None:
            return
        kind, device = parsed[1], parsed[2]
        try:
            if kind == TopicKind.COMMANDS:
                cmd = wire.decode_command(msg.payload)
                self._seen(cmd.id, device, cmd.name, dict(cmd.args), CommandStatus.SENT, cmd.ts)
            else:
                answer = wire.decode_response(msg.payload)
                self._seen(answer.id, device, "", {}, CommandStatus(answer.status), answer.ts, answer.detail)
        except (InvalidCommand, ValueError):
            return  # not a command the page can show; the platform deals with it

    def _seen(self, cid: str, device: str, name: str, args: dict, status: str, ts: int, detail: str = "") -> None:
        with self._lock:
            view = self._commands.get(cid)
            if view is None:
                view = self._commands[cid] = CommandView(cid, device, name, args, status, sim_ms=self._now_sim_ms())
            elif name and not view.name:
                view.name, view.args = name, args
            view.advance(status, ts, detail)
            self._to_complete.add(cid)
            self.version += 1

    def complete(self) -> None:
        """Read the platform's record of the commands heard since the last call (from the hub's thread)."""
        if self._api is None:
            return
        with self._lock:
            due, self._to_complete = self._to_complete, set()
        for cid in due:
            try:
                record = self._api.command(cid)
            except PlatformError:
                continue  # another tenant's or not yet stored: the broker's view stands
            with self._lock:
                view = self._commands[cid]
                view.name, view.args = view.name or record.name, view.args or record.args
                for status, ts in record.history:
                    view.advance(status, ts)
                if record.status in FINAL_STATUSES:
                    view.status, view.detail = record.status, record.detail
                self.version += 1

    def shown(self) -> list[CommandView]:
        with self._lock:
            return [msgspec.structs.replace(v, history=list(v.history)) for v in
                    list(self._commands.values())[-MAX_SHOWN:]]

    def close(self) -> None:
        if self._client is not None:
            time.sleep(0.05)  # the last responses may still be in flight
            self._client.disconnect()
            self._client.loop_stop()
