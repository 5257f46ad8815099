"""MQTT ingest: receive telemetry and events, check them against the registry, store, then acknowledge.

A bounded queue sits between the MQTT receive thread and the writer; when it is full the
receive thread blocks, so the broker holds the backlog (back-pressure, not unbounded memory).
A message is acknowledged (PUBACK) only after its readings are committed: QoS 1 end to end.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, replace

import paho.mqtt.client as mqtt

from gridloop.contract import BrokerAddress, parse_topic, shared
from gridloop.mqtt_client import connect, is_v5
from gridloop.platform.envelope import decode_events, decode_telemetry
from gridloop.platform.store.base import Store

log = logging.getLogger(__name__)


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
        group: str = "ingest",
    ) -> None:
        self.group = group  # the shared-subscription group: the workers of one platform split its stream
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

    def start(self) -> None:
        user, password = self._credentials or (None, None)
        self._writer.start()  # consume before the persistent session replays what it queued
        self._client = connect(
            self.broker, f"gridloop-{self.group}-{self.worker_id}", clean_start=False,
            session_expiry_s=3600, manual_ack=True, username=user, password=password, on_message=self._on_message,
            max_reconnect_delay_s=1,  # back within a second of a broker restart: shared subscriptions queue nothing
        )
        self._client.on_connect = self._subscribe
        self._subscribe(self._client)

    def _subscribe(self, client: mqtt.Client, *_: object) -> None:
        if is_v5(client):
            client.subscribe([(shared("telemetry", self.group), 1), (shared("events", self.group), 1)])
        elif self.worker_id == 0:  # an MQTT 3.1.1 broker has no shared subscriptions: one worker takes all
            client.subscribe([("gridloop/v1/+/telemetry/+", 1), ("gridloop/v1/+/events/+", 1)])
        if self.worker_id == 0:  # retained status is not delivered on shared subscriptions
            client.subscribe("gridloop/v1/+/status/+", 1)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
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
            if kind == "status":
                status = m.payload.decode(errors="replace").strip('"')
                if self.store.owner_of(device) == tenant and status in ("online", "offline"):
                    self.store.set_device_status(tenant, device, status)
                continue
            decode = decode_telemetry if kind == "telemetry" else decode_events
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

    def stop(self) -> None:
        """Drain what is queued, then disconnect."""
        deadline = time.monotonic() + 10
        while not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        if self._writer.is_alive():
            self._writer.join(timeout=5)
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
