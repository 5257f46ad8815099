"""MQTT ingest: receive telemetry and events, check them against the registry, store, then acknowledge.

A bounded queue sits between the MQTT receive thread and the writer; when it is full the
receive thread blocks, so the broker holds the backlog (back-pressure, not unbounded memory).
A message is acknowledged (PUBACK) only after its readings are committed: QoS 1 end to end.

Client ids are ``gridloop-<group>-<instance>-<n>``: unique per platform replica (``instance``), the same
across restarts of one replica when its instance name is. The session is persistent, so a worker that
crashed and comes back under the same id gets what it never acknowledged and what the broker queued for it
meanwhile. A graceful stop with ``release_on_stop`` hands the worker's share to the other group members
instead: unsubscribe, drain and acknowledge, end the session (docs/scale-out/platform.md).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, replace

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gridloop.contract import INGEST_GROUP, BrokerAddress, DeviceStatus, TopicKind, all_tenants, parse_topic, shared
from gridloop.mqtt_client import connect, is_v5
from gridloop.platform.envelope import decode_events, decode_telemetry
from gridloop.platform.store.base import Store

log = logging.getLogger(__name__)
RELEASE_QUIET_S = 0.5  # after unsubscribing: drained once nothing more arrived for this long


@dataclass
class IngestCounters:
    """What one ingest worker has done; summed over workers for /api/v1/metrics."""

    messages: int = 0
    readings_received: int = 0
    readings_stored: int = 0
    readings_duplicate: int = 0
    events_stored: int = 0
    rejected: int = 0
    queue_full_waits: int = 0
    write_batches: int = 0
    disconnects: int = 0  # lost broker connections (a broker restart; another client taking over this client id)
    queue_depth: int = 0  # messages waiting for the writer (a gauge, filled in by IngestWorker.snapshot)


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int


class IngestWorker:
    """One subscriber of the shared subscription group; run several for more throughput."""

    def __init__(
        self,
        store: Store,
        broker: BrokerAddress,
        worker_id: int = 0,
        *,
        queue_size: int = 1024,
        batch_messages: int = 200,
        credentials: tuple[str, str] | None = None,
        group: str = INGEST_GROUP,
        instance: str | None = None,
        session_expiry_s: int = 3600,
        release_on_stop: bool = False,
    ) -> None:
        """``instance``: the platform replica's name, part of the client id (None: ``gridloop-<group>-<n>``)."""
        self.group = group  # the shared-subscription group: the workers of all replicas split its stream
        self.instance = instance
        self.client_id = f"gridloop-{group}-{instance}-{worker_id}" if instance else f"gridloop-{group}-{worker_id}"
        self.session_expiry_s = session_expiry_s
        self.release_on_stop = release_on_stop
        self.store = store
        self.broker = broker
        self.worker_id = worker_id
        self.counters = IngestCounters()
        self._queue: queue.Queue[_Message] = queue.Queue(maxsize=queue_size)
        self._batch = batch_messages
        self._credentials = credentials
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name=f"ingest-writer-{worker_id}", daemon=True)
        self._client: mqtt.Client | None = None
        self._released = False
        self._last_message = 0.0  # time.monotonic() of the last message received

    def start(self) -> None:
        user, password = self._credentials or (None, None)
        self._writer.start()  # consume before the persistent session replays what it queued
        self._client = connect(
            self.broker, self.client_id, clean_start=False,
            session_expiry_s=self.session_expiry_s, manual_ack=True, username=user, password=password,
            on_message=self._on_message,
            max_reconnect_delay_s=1,  # back within a second of a broker restart: shared subscriptions queue nothing
        )
        self._client.on_connect = self._subscribe
        self._client.on_disconnect = self._on_disconnect
        self._subscribe(self._client)

    def _on_disconnect(self, *_: object) -> None:
        if not self._stop.is_set() and not self._released:
            self.counters.disconnects += 1
            log.warning("ingest worker %s lost its broker connection", self.client_id)

    def _topics(self, client: mqtt.Client) -> list[str]:
        topics = []
        if is_v5(client):
            topics += [shared(TopicKind.TELEMETRY, self.group), shared(TopicKind.EVENTS, self.group)]
        elif self.worker_id == 0:  # an MQTT 3.1.1 broker has no shared subscriptions: one worker takes all
            topics += [all_tenants(TopicKind.TELEMETRY), all_tenants(TopicKind.EVENTS)]
        if self.worker_id == 0:  # retained status is not delivered on shared subscriptions
            # every replica's worker 0 gets every status message and stores it: the same value, so harmless
            topics.append(all_tenants(TopicKind.STATUS))
        return topics

    def _subscribe(self, client: mqtt.Client, *_: object) -> None:
        if not self._released and (topics := self._topics(client)):
            client.subscribe([(t, 1) for t in topics])

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self._last_message = time.monotonic()
        item = _Message(msg.topic, msg.payload, msg.mid, msg.qos)
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.counters.queue_full_waits += 1
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.5)
                    return
                except queue.Full:
                    continue

    def _write_loop(self) -> None:
        while not self._stop.is_set() or not self._queue.empty():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < self._batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._store_batch(batch)
            except Exception:  # a store failure must not ack: the broker will redeliver
                log.exception("ingest batch failed; %d messages left unacknowledged", len(batch))
                time.sleep(1.0)
                continue
            if self._client is not None:
                for m in batch:
                    if m.qos > 0:
                        self._client.ack(m.mid, m.qos)

    def _store_batch(self, batch: list[_Message]) -> None:
        readings_by_tenant: dict[str, list] = {}
        events_by_tenant: dict[str, list] = {}
        c = self.counters
        for m in batch:
            c.messages += 1
            parsed = parse_topic(m.topic)
            if parsed is None:
                self.store.add_rejected(None, m.topic, "topic does not follow the contract", m.payload)
                c.rejected += 1
                continue
            tenant, kind, device = parsed
            if kind == TopicKind.STATUS:
                status = m.payload.decode(errors="replace").strip('"')
                if self.store.owner_of(device) == tenant and status in tuple(DeviceStatus):
                    self.store.set_device_status(tenant, device, status)
                continue
            decode = decode_telemetry if kind == TopicKind.TELEMETRY else decode_events
            decoded = decode(m.payload, tenant, self.store.owner_of)
            for reason in decoded.rejections:
                self.store.add_rejected(tenant, m.topic, reason, m.payload)
            c.rejected += len(decoded.rejections)
            c.readings_received += len(decoded.readings)
            readings_by_tenant.setdefault(tenant, []).extend(decoded.readings)
            events_by_tenant.setdefault(tenant, []).extend(decoded.events)
        for tenant, readings in readings_by_tenant.items():
            if readings:
                stored = self.store.insert_readings(tenant, readings)
                c.readings_stored += stored
                c.readings_duplicate += len(readings) - stored
        for tenant, events in events_by_tenant.items():
            if events:
                c.events_stored += self.store.insert_events(tenant, events)
        c.write_batches += 1

    def snapshot(self) -> IngestCounters:
        """A copy of the counters with the current queue depth, for /api/v1/metrics."""
        return replace(self.counters, queue_depth=self._queue.qsize())

    def _release(self, client: mqtt.Client, timeout_s: float = 5.0) -> None:
        """Leave the shared subscriptions (the broker then sends the group's messages to the other members)
        and wait until what was already on its way to this worker has arrived."""
        self._released = True
        done = threading.Event()
        client.on_unsubscribe = lambda *_: done.set()
        rc, _ = client.unsubscribe(self._topics(client))
        if rc != mqtt.MQTT_ERR_SUCCESS or not done.wait(timeout_s):
            log.warning("ingest worker %s: no UNSUBACK; stopping anyway", self.client_id)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and time.monotonic() - self._last_message < RELEASE_QUIET_S:
            time.sleep(0.05)

    def stop(self) -> None:
        """Drain what is queued, then disconnect (with ``release_on_stop``: leave the group, end the session)."""
        release = self.release_on_stop and self._client is not None and is_v5(self._client)
        if release:
            self._release(self._client)
        deadline = time.monotonic() + 10
        while not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        if self._writer.is_alive():
            self._writer.join(timeout=5)
        if self._client is not None:
            if release:  # everything received is acknowledged: nothing is left for this session to hold
                props = Properties(PacketTypes.DISCONNECT)
                props.SessionExpiryInterval = 0
                self._client.disconnect(properties=props)
            else:
                self._client.disconnect()
            self._client.loop_stop()
