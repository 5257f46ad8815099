"""Command dispatch: publish commands to devices, follow their responses, expire the stale ones.

Any number of platform replicas may each run a dispatcher on one broker and one store:

- a command is sent by the replica whose API received it; the store's status steps are atomic and only go
  forward (store.base.COMMAND_STEPS), so whichever replica records what, 'executed' is never overwritten;
- responses are consumed once across replicas (MQTT v5 shared subscription ``$share/<group>/...responses/+``);
- every replica sees every status message (a plain subscription: retained status is not delivered on shared
  ones). On offline -> online, never-sent (pending) commands go out: every replica tries, the store's
  pending -> sent step (a compare-and-set) lets exactly one send each. Commands sent before the device went
  offline, which may have been lost, are re-sent only by the holder of the store lease ``commands`` (again a
  compare-and-set), so once, not once per replica; the lease holder also expires stale commands. With no
  holder (it died; its lease runs out after LEASE_TTL_MS) nothing is re-sent or expired until one takes over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gridloop.broker_accounts import platform_client_suffix
from gridloop.contract import (
    BrokerAddress,
    CommandMessage,
    CommandStatus,
    DeviceStatus,
    InvalidCommand,
    TopicKind,
    all_tenants,
    parse_topic,
    shared,
    topic,
)
from gridloop.contract import commands as wire
from gridloop.mqtt_client import TlsFiles, connect, is_v5
from gridloop.platform.store.base import CommandRecord, Store

log = logging.getLogger(__name__)

LEASE = "commands"  # the store lease of the replica that re-sends sent commands and expires stale ones
LEASE_TTL_MS = 10_000  # a dead holder's lease passes to another replica after this long
LEASE_RENEW_S = 2.0
RESPONSES = all_tenants(TopicKind.RESPONSES)
STATUS = all_tenants(TopicKind.STATUS)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def default_instance() -> str:
    """A name unique to this process: ``<hostname>-<pid>`` (not stable across restarts)."""
    host = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in socket.gethostname()) or "host"
    return f"{host[:40]}-{os.getpid()}"


class CommandDispatcher:
    """Sends commands on the contract's command topics and records every response."""

    def __init__(
        self,
        store: Store,
        broker: BrokerAddress,
        credentials: tuple[str, str] | None = None,
        *,
        instance: str | None = None,
        group: str | None = None,
        session_expiry_s: int = 0,
        release_on_stop: bool = True,
        tls: TlsFiles | None = None,
    ) -> None:
        """``instance``: the replica's name (client id ``gridloop-<group>-<instance>-commands``, lease holder).

        ``group``: the platform's shared-subscription group, here for the responses (None: this dispatcher gets
        every response, for one replica only). ``session_expiry_s`` > 0 keeps the session, so a replica that
        crashed and comes back under the same name gets the responses the broker queued for it;
        ``release_on_stop``: a graceful stop leaves the group and ends the session, so the other replicas take
        all responses at once.
        """
        self.store = store
        self.broker = broker
        self.instance = instance or f"{default_instance()}-{uuid.uuid4().hex[:6]}"
        self.group = group
        self.client_id = (f"gridloop-{group}-{self.instance}-commands" if group
                          else f"gridloop-commands-{self.instance}") + platform_client_suffix(credentials)
        self.session_expiry_s = session_expiry_s
        self.release_on_stop = release_on_stop
        self._credentials = credentials
        self._tls = tls
        self._client: mqtt.Client | None = None
        self._stop = threading.Event()
        self._expirer = threading.Thread(target=self._lease_loop, name="command-expiry", daemon=True)
        self._status: dict[tuple[str, str], str] = {}  # (tenant, device) -> online/offline, from the status topic
        self._offline_at: dict[tuple[str, str], int] = {}  # (tenant, device) -> epoch ms this replica saw it go
        self._lock = threading.Lock()  # a status change and a submit never interleave: no command is left behind
        self._released = False
        self.leader = False  # holds the lease: re-sends sent commands, expires stale ones
        self.resent = 0  # commands sent on a device's return online (never-sent ones and re-sent ones)
        self.responses = 0  # responses this replica handled (each is handled by one replica)
        self.disconnects = 0  # lost broker connections (a broker restart; another client taking over the id)

    def start(self) -> None:
        self._renew_lease()  # before the first status message: one replica alone leads from the start
        user, password = self._credentials or (None, None)
        self._client = connect(self.broker, self.client_id, clean_start=not self.session_expiry_s,
                               session_expiry_s=self.session_expiry_s, username=user, password=password,
                               on_message=self._on_message, tls=self._tls)
        self._client.on_connect = self._subscribe  # again after every reconnect
        self._client.on_disconnect = self._on_disconnect
        self._subscribe(self._client)
        self._expirer.start()

    def _on_disconnect(self, *_: object) -> None:
        if not self._stop.is_set():
            self.disconnects += 1
            log.warning("command dispatcher %s lost its broker connection", self.client_id)

    def _responses_topic(self, client: mqtt.Client) -> str:
        return shared(TopicKind.RESPONSES, self.group) if self.group and is_v5(client) else RESPONSES

    def _subscribe(self, client: mqtt.Client, *_: object) -> None:
        if self._released:
            return
        # status at QoS 0: a restarted replica must not replay status changes queued while it was away (it
        # would re-send what was handled then); the retained status it gets on subscribing is the current one
        client.subscribe([(self._responses_topic(client), 1), (STATUS, 0)])

    def submit(self, tenant: str, device: str, name: str, args: dict, expires: int | None) -> CommandRecord:
        """Record a new command as pending, then send it (it becomes sent) unless the device is offline."""
        ts = now_ms()
        record = CommandRecord(
            tenant=tenant, id=str(uuid.uuid4()), device=device, name=name, args=args, ts=ts, expires=expires,
            status=CommandStatus.PENDING, updated=ts, history=[[CommandStatus.PENDING, ts]],
        )
        with self._lock:
            self.store.put_command(record)
            if self._device_status(tenant, device) != DeviceStatus.OFFLINE:
                self._claim_and_publish(record)
        return record

    def _device_status(self, tenant: str, device: str) -> str | None:
        status = self._status.get((tenant, device))
        if status is None:
            stored = self.store.get_device(tenant, device)
            status = stored.status if stored is not None else None
        return status

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        parsed = parse_topic(msg.topic)
        try:
            if parsed is not None and parsed[1] == TopicKind.STATUS:
                self._on_status(parsed[0], parsed[2], msg.payload.decode(errors="replace").strip('"'),
                                bool(msg.retain))
            else:
                self._on_response(client, userdata, msg)
        except Exception:  # a store hiccup must not kill paho's network thread
            log.exception("handling %s failed", msg.topic)

    def _on_status(self, tenant: str, device: str, status: str, retained: bool) -> None:
        """A device back online gets its open, unexpired commands (already sent ones only on a live transition)."""
        if status not in tuple(DeviceStatus) or not self.store.is_registered(tenant, device):
            return
        key = (tenant, device)
        with self._lock:
            before = self._status.get(key)
            self._status[key] = status
            if status == DeviceStatus.OFFLINE and before != DeviceStatus.OFFLINE:
                self._offline_at[key] = now_ms()
            if status != DeviceStatus.ONLINE or before == DeviceStatus.ONLINE:
                return
            # a live offline -> online transition: what was sent before the device went away may be lost; a
            # retained 'online' seen at start-up says nothing about that, so only the never-sent (pending) ones
            # go out then. Every replica sees this message: pending ones go out through the store's one-time
            # pending -> sent step (so once); sent ones only from the lease holder, only those last sent before
            # it saw the device go offline (not one another replica has just sent for this same transition).
            offline_at = (self._offline_at.get(key, 0)
                          if not retained and before == DeviceStatus.OFFLINE and self.leader else 0)
            now = now_ms()
            for c in self.store.open_commands():
                due = (c.tenant == tenant and c.device == device and (c.expires is None or c.expires > now)
                       and (c.status == CommandStatus.PENDING
                            or (c.status == CommandStatus.SENT and c.updated < offline_at)))
                if due and self._claim_and_publish(c):
                    self.resent += 1

    def _claim_and_publish(self, record: CommandRecord) -> bool:
        """Record the command as sent if nobody did since it was read, then publish it; False if another did."""
        if not self.store.update_command(record.tenant, record.id, CommandStatus.SENT, "", now_ms(),
                                         expect_updated=record.updated):
            return False
        record.status = CommandStatus.SENT
        payload = wire.encode(CommandMessage(v=1, id=record.id, ts=record.ts, name=record.name, args=record.args,
                                             expires=record.expires))
        if self._client is not None:  # not connected: paho sends it on reconnect (QoS 1)
            self._client.publish(topic(record.tenant, TopicKind.COMMANDS, record.device), payload, qos=1)
        return True

    def _on_response(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.responses += 1
        parsed = parse_topic(msg.topic)
        if parsed is None:
            return
        tenant, _, device = parsed
        try:
            response = wire.decode_response(msg.payload)
        except InvalidCommand as exc:
            self.store.add_rejected(tenant, msg.topic, f"malformed command response: {exc}", msg.payload)
            return
        current = self.store.get_command(tenant, response.id)
        if current is None or current.device != device:
            self.store.add_rejected(tenant, msg.topic, "response to an unknown command", msg.payload)
            return
        # the store takes only forward steps: a late 'accepted' does not reopen an executed command
        self.store.update_command(tenant, current.id, CommandStatus(response.status), response.detail, now_ms())

    def _renew_lease(self) -> None:
        try:
            self.leader = self.store.acquire_lease(LEASE, self.instance, LEASE_TTL_MS)
        except Exception:
            log.exception("renewing the command lease failed")
            self.leader = False

    def _lease_loop(self) -> None:
        renew_at = time.monotonic() + LEASE_RENEW_S
        while not self._stop.wait(0.5):
            if time.monotonic() >= renew_at:
                self._renew_lease()
                renew_at = time.monotonic() + LEASE_RENEW_S
            if self.leader:
                try:
                    self._expire()
                except Exception:
                    log.exception("expiring commands failed")

    def _expire(self) -> None:
        now = now_ms()
        for c in self.store.open_commands():
            if c.expires is not None and c.expires < now and c.status in (CommandStatus.PENDING, CommandStatus.SENT):
                self.store.update_command(c.tenant, c.id, CommandStatus.EXPIRED, "not accepted before it expired", now)

    def stop(self) -> None:
        self._stop.set()
        if self._expirer.is_alive():
            self._expirer.join(timeout=5)
        if self.leader:
            try:
                self.store.release_lease(LEASE, self.instance)  # another replica takes over at once
            except Exception:
                log.exception("releasing the command lease failed")
            self.leader = False
        if self._client is None:
            return
        release = self.release_on_stop and self.session_expiry_s > 0 and is_v5(self._client)
        if release:
            self._released = True
            done = threading.Event()
            self._client.on_unsubscribe = lambda *_: done.set()
            if self._client.unsubscribe(self._responses_topic(self._client))[0] == mqtt.MQTT_ERR_SUCCESS:
                done.wait(5)  # responses arriving until the UNSUBACK are handled (in paho's thread) and acked
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0
            self._client.disconnect(properties=props)
        else:
            self._client.disconnect()
        self._client.loop_stop()
