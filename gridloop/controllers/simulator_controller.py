"""The simulator controller: commands arrive over MQTT, are checked at once and applied at the next step.

It answers on the contract's response topic: ``accepted`` (or ``rejected`` with a reason) on receipt,
then ``executed`` or ``failed`` when the step boundary applies it. Commands are applied in a
deterministic order (arrival order within the step, ties by command id).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
import paho.mqtt.client as mqtt

from gridloop.contract import (
    BrokerAddress,
    CommandMessage,
    CommandResponse,
    CommandStatus,
    InvalidCommand,
    TopicKind,
    parse_topic,
    topic,
)
from gridloop.contract import commands as wire
from gridloop.contract.bounds import MAX_DETAIL
from gridloop.mqtt_client import TlsFiles, connect

# Applies one command to the grid; raises ValueError with the reason if it cannot.
Action = Callable[[dict], str]
# Says why a command's arguments are out of range for this device, or None if they are fine.
Check = Callable[[str, dict], "str | None"]


@dataclass
class Actuator:
    """A device in the grid that obeys commands: which commands, what each does, which arguments it takes."""

    device: str
    kind: str  # switch, battery, flexible_load, transformer
    actions: dict[str, Action]
    check: Check | None = None


@dataclass(order=True)
class _Pending:
    arrived: int
    id: str
    device: str = field(compare=False)
    name: str = field(compare=False)
    args: dict = field(compare=False)
    published_ms: int = field(compare=False)


@dataclass
class ControllerCounters:
    received: int = 0
    executed: int = 0
    rejected: int = 0
    failed: int = 0
    latency_ms: list[float] = field(default_factory=list)  # command publication -> applied at a step


class SimulatorController:
    """Subscribes to ``gridloop/v1/{tenant}/commands/+`` and applies commands to actuators."""

    def __init__(self, broker: BrokerAddress, tenant: str, actuators: list[Actuator], respond: bool = True,
                 tls: TlsFiles | None = None, credentials: tuple[str, str] | None = None,
                 device_prefix: str = "") -> None:
        """``respond=False``: a follower partition applies commands to its copy of the grid but stays silent.

        ``device_prefix``: this controller's substation; it takes the commands to ``{prefix}{actuator}`` only
        (another substation's controller answers the rest).
        """
        self.tenant = tenant
        self.respond = respond
        self.device_prefix = device_prefix
        self._answers: dict[str, tuple[str, str, str]] = {}  # command id -> (device, status, detail) last sent
        self.actuators = {a.device: a for a in actuators}
        self.counters = ControllerCounters()
        self.log: list[dict] = []  # what was applied when, for the run directory
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._arrivals = 0
        self._order = 0
        self._client = connect(broker, f"gridloop-controller-{tenant}-{uuid.uuid4().hex[:6]}",
                               subscriptions=[(topic(tenant, TopicKind.COMMANDS, "+"), 1)], on_message=self._on_command,
                               tls=tls, username=(credentials or (None, None))[0],
                               password=(credentials or (None, None))[1])

    @property
    def arrivals(self) -> int:
        """Commands received so far (a barrier for commands the scenario itself sent)."""
        return self._arrivals

    def _respond(self, device: str, command_id: str, status: CommandStatus, detail: str = "") -> None:
        with self._lock:
            self._answers[command_id] = (device, status, detail)
        if not self.respond:
            return
        payload = wire.encode(CommandResponse(v=1, id=command_id, ts=time.time_ns() // 1_000_000, status=status,
                                              detail=detail[:MAX_DETAIL]))
        self._client.publish(topic(self.tenant, TopicKind.RESPONSES, self.device_prefix + device), payload, qos=1)

    def _on_command(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        parsed = parse_topic(msg.topic)
        if parsed is None:
            return
        device = parsed[2]
        if self.device_prefix:
            if not device.startswith(self.device_prefix):
                return  # another substation's device
            device = device[len(self.device_prefix):]
        try:
            self._take(device, msg.payload)
        finally:  # counted only once it is queued or refused: a barrier on arrivals then sees it complete
            with self._lock:
                self._arrivals += 1

    def _take(self, device: str, payload: bytes) -> None:
        try:
            command: CommandMessage | None = wire.decode_command(payload)
            invalid = ""
        except InvalidCommand as exc:
            command, invalid = None, str(exc)
        cid = command.id if command is not None else _command_id(payload)
        if cid is None:
            with self._lock:
                self.counters.received += 1
                self.counters.rejected += 1
            return  # no id to answer to
        with self._lock:
            last = self._answers.get(cid)
            if last is None:  # a new command; a QoS 1 redelivery or the platform's re-send is not counted again
                self.counters.received += 1
                self._answers[cid] = (device, CommandStatus.PENDING, "")
        if last is not None:  # answer it again, never apply it twice
            answered_device, status, detail = last
            if status != CommandStatus.PENDING:
                self._respond(answered_device, cid, status, detail)
            return
        reason = invalid or self._check(device, command.name, command.args, command.expires)  # type: ignore[union-attr]
        if reason or command is None:
            with self._lock:
                self.counters.rejected += 1
            self._respond(device, cid, CommandStatus.REJECTED, reason)
            return
        self._respond(device, cid, CommandStatus.ACCEPTED, "applied at the next step")
        with self._lock:
            self._order += 1
            self._pending.append(_Pending(self._order, cid, device, command.name, command.args, command.ts))

    def _check(self, device: str, name: str, args: dict, expires: int | None) -> str | None:
        actuator = self.actuators.get(device)
        if actuator is None:
            return f"device {device!r} is not an actuator in this grid"
        if name not in actuator.actions:
            return f"{actuator.kind} {device!r} does not take {name!r}; it takes {', '.join(actuator.actions)}"
        if expires is not None and expires < time.time_ns() // 1_000_000:
            return "expired before it arrived"
        if actuator.check is not None:
            return actuator.check(name, args)
        return None

    def apply_pending(self, sim_time_s: float) -> int:
        """Apply every command that arrived since the last step; returns how many were applied."""
        with self._lock:
            batch, self._pending = sorted(self._pending), []
        now = time.time_ns() // 1_000_000
        for cmd in batch:
            action = self.actuators[cmd.device].actions[cmd.name]
            try:
                detail = action(cmd.args)
            except (ValueError, KeyError, TypeError) as exc:
                self.counters.failed += 1
                self._respond(cmd.device, cmd.id, CommandStatus.FAILED, str(exc))
                continue
            self.counters.executed += 1
            if cmd.published_ms:
                self.counters.latency_ms.append(max(0, now - cmd.published_ms))
            self.log.append({"sim_time_s": sim_time_s, "device": cmd.device, "command": cmd.name,
                             "args": cmd.args, "id": cmd.id})
            self._respond(cmd.device, cmd.id, CommandStatus.EXECUTED, detail)
        return len(batch)

    def close(self) -> None:
        time.sleep(0.05)  # let the last responses leave
        self._client.disconnect()
        self._client.loop_stop()


class _CommandId(msgspec.Struct):
    id: str


_id_only = msgspec.json.Decoder(_CommandId)


def _command_id(payload: bytes) -> str | None:
    """The id of a command too malformed to run, so that it can still be answered ``rejected``."""
    try:
        cid = _id_only.decode(payload).id
    except (msgspec.DecodeError, RecursionError):
        return None
    return cid if 0 < len(cid) <= 64 else None
