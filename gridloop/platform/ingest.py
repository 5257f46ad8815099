"""MQTT ingest: receive telemetry and events, check them against the registry, store, then acknowledge.

A bounded queue sits between the MQTT receive thread and the writer, and the broker holds the backlog
(back-pressure, not unbounded memory) by MQTT v5 flow control: the worker connects with Receive Maximum equal
to the queue's size, so the broker sends no more QoS 1 messages than the worker has not acknowledged yet, and
the queue can never be full of them. The receive thread (paho's network loop) therefore never blocks: it keeps
answering keepalives however long the store stalls, and the broker keeps the session. A QoS 0 message (outside
the contract, which says QoS 1) that finds the queue full is dropped and counted. Only on an MQTT 3.1.1 broker
(no flow control) does the receive thread wait for room, as the last resort.
A message is acknowledged (PUBACK) only after its readings are committed: QoS 1 end to end.

Client ids are ``gridloop-<group>-<instance>-<n>`` plus a secret suffix derived from the platform's password (a tenant
cannot take them over): unique per platform replica (``instance``), the same
across restarts of one replica when its instance name is. The session is persistent, so a worker that
crashed and comes back under the same id gets what it never acknowledged and what the broker queued for it
meanwhile. A graceful stop with ``release_on_stop`` hands the worker's share to the other group members
instead: unsubscribe, drain and acknowledge, end the session (docs/scale-out/platform.md).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gridloop.broker_accounts import platform_client_suffix
from gridloop.contract import (
    INGEST_GROUP,
    BrokerAddress,
    DeviceStatus,
    TopicKind,
    all_tenants,
    parse_topic,
    shared,
    topic,
)
from gridloop.contract.delivery import encode_ack, envelope_id
from gridloop.mqtt_client import KEEPALIVE_S, TlsFiles, connect, is_v5
from gridloop.platform.envelope import decode_events, decode_telemetry
from gridloop.platform.rollup_schedule import RollupSchedule
from gridloop.platform.store.base import Store
from gridloop.platform.store.errors import StoreUnavailable

log = logging.getLogger(__name__)
COUNTERS_LOCK = threading.Lock()
RELEASE_QUIET_S = 0.5  # after unsubscribing: drained once nothing more arrived for this long
OUTAGE_RETRY_MIN_S, OUTAGE_RETRY_MAX_S = 0.05, 2.0  # back-off while the store is unavailable
MAX_KEPT_PAYLOAD = 4096  # bytes of a rejected payload kept with its reason (the reason says what was wrong)
MAX_REASON = 1000
# MongoDB error codes of an unavailable server (not of bad data): HostUnreachable, HostNotFound, NetworkTimeout,
# ShutdownInProgress, PrimarySteppedDown, ExceededTimeLimit, SocketException, NotWritablePrimary, NotPrimary...
# ... and WriteConcernFailed, LockTimeout, Unauthorized (credentials changed), OutOfDiskSpace
MONGO_TRANSIENT_CODES = frozenset({6, 7, 13, 24, 64, 89, 91, 189, 202, 262, 9001, 10107, 11600, 11602, 13435,
                                   13436, 14031})
SQLITE_OUTAGES = ("locked", "busy", "disk i/o error", "database or disk is full", "unable to open")


def is_store_outage(exc: BaseException) -> bool:
    """The store is unavailable (locked, unreachable, full), as opposed to refusing this particular data."""
    if isinstance(exc, sqlite3.OperationalError):
        return any(word in str(exc).lower() for word in SQLITE_OUTAGES)
    from pymongo import errors

    if isinstance(exc, errors.PyMongoError) and exc.has_error_label("RetryableWriteError"):
        return True
    return isinstance(exc, StoreUnavailable | errors.ConnectionFailure | errors.ExecutionTimeout  # lock lost/busy
                      | errors.WTimeoutError | errors.WriteConcernError) or (
        isinstance(exc, errors.OperationFailure) and exc.code in MONGO_TRANSIENT_CODES)


@dataclass
class IngestCounters:
    """What one ingest worker has done; summed over workers for /api/v1/metrics."""

    messages: int = 0
    readings_received: int = 0
    readings_stored: int = 0
    readings_duplicate: int = 0
    events_stored: int = 0
    rejected: int = 0
    queue_full_waits: int = 0  # the receive thread waited for room (MQTT 3.1.1 only: v5 flow control prevents it)
    at_most_once_dropped: int = 0  # QoS 0 messages (outside the contract) dropped because the queue was full
    write_batches: int = 0
    disconnects: int = 0  # lost broker connections (a broker restart; another client taking over this client id)
    quarantined: int = 0  # messages the store refused, kept with its reason among the rejected ones
    store_outages: int = 0  # times the store became unavailable (ingest paused, nothing acknowledged meanwhile)
    delivery_acks: int = 0  # numbered envelopes acknowledged to their publishers (contract.delivery)
    queue_depth: int = 0  # messages waiting for the writer (a gauge, filled in by IngestWorker.snapshot)
    degraded: int = 0  # 1 while the store is unavailable (a gauge)
    tenants: dict[str, dict[str, int]] = field(default_factory=dict)  # tenant -> its share of the counts above

    def add(self, tally: dict[str | None, Counter[str]], messages: int) -> None:
        """Count a written batch: per tenant (what a tenant may see of ingest) and in all."""
        with COUNTERS_LOCK:
            self._add(tally, messages)

    def _add(self, tally: dict[str | None, Counter[str]], messages: int) -> None:
        self.messages += messages
        self.write_batches += 1
        for tenant, counts in tally.items():
            own = self.tenants.setdefault(tenant, {}) if tenant is not None else None
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)
                if own is not None:
                    own[name] = own.get(name, 0) + value


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
        tls: TlsFiles | None = None,
        keepalive_s: int = KEEPALIVE_S,
    ) -> None:
        """``instance``: the platform replica's name, part of the client id (None: ``gridloop-<group>-<n>``).
        ``queue_size``: also the Receive Maximum the broker is asked to respect (MQTT v5 flow control)."""
        self.group = group  # the shared-subscription group: the workers of all replicas split its stream
        self.instance = instance
        base = f"gridloop-{group}-{instance}-{worker_id}" if instance else f"gridloop-{group}-{worker_id}"
        self.client_id = base + platform_client_suffix(credentials)  # not guessable by a tenant: no take-over
        self.session_expiry_s = session_expiry_s
        self.release_on_stop = release_on_stop
        self.store = store
        self.broker = broker
        self.worker_id = worker_id
        self.counters = IngestCounters()
        self._queue: queue.Queue[_Message] = queue.Queue(maxsize=queue_size)
        self._receive_maximum = min(queue_size, 65_535)  # QoS 1 messages un-acked <= queue size: never full
        self._keepalive_s = keepalive_s
        self._batch = batch_messages
        self._rollups = RollupSchedule()  # readings are folded into the rollup buckets every few seconds
        self._credentials = credentials
        self._tls = tls
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
            on_message=self._on_message, tls=self._tls,
            max_reconnect_delay_s=1,  # back within a second of a broker restart: shared subscriptions queue nothing
            receive_maximum=self._receive_maximum, keepalive_s=self._keepalive_s,
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
            if msg.qos == 0:  # at most once, and the queue is full of what was promised more: never block for it
                self.counters.at_most_once_dropped += 1
                return
            # only without v5 flow control (MQTT 3.1.1): block the network loop, the broker holds the rest
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
            while True:  # the writer never dies: what fails unexpectedly is tried again, never acknowledged
                try:
                    self._write(batch)
                    break
                except Exception:
                    log.exception("ingest worker %s: writing a batch failed; trying again", self.client_id)
                    if self._stop.wait(1.0):
                        return
        self._rollups.run_due(self.store, force=True)  # stopping: fold what this worker's data clock allows

    def _write(self, batch: list[_Message]) -> None:
        """Store the batch, then acknowledge each message: none is acknowledged before it is stored or quarantined.

        A store outage (locked, unreachable) is retried until the store is back (the queue fills and the receive
        thread blocks: back-pressure); a message the store refuses is isolated by splitting the batch and
        quarantined with the store's reason, so that it never costs the good messages beside it.
        """
        delay = OUTAGE_RETRY_MIN_S
        while True:
            try:
                stored = self._commit(batch)
                break
            except Exception as exc:
                if is_store_outage(exc):
                    if self._stop.is_set():
                        return  # stopping during an outage: unacknowledged, the broker redelivers later
                    self._outage(exc, delay)
                    delay = min(delay * 2, OUTAGE_RETRY_MAX_S)
                    if delay < OUTAGE_RETRY_MAX_S or len(batch) == 1:
                        continue  # a long 'outage' of a batch may be one message after all: split it (below)
                elif len(batch) == 1:
                    try:
                        stored = self._quarantine(batch[0], exc)
                    except Exception as quarantine_error:
                        if not is_store_outage(quarantine_error):
                            raise
                        self._outage(quarantine_error, delay)  # the store went away meanwhile: try it all again
                        continue
                    break
                half = len(batch) // 2
                self._write(batch[:half])
                self._write(batch[half:])
                return
        if self.counters.degraded:
            log.warning("ingest worker %s: the store is back", self.client_id)
            self.counters.degraded = 0
        self._ack(batch)
        self._acknowledge_delivery(stored)
        self._rollups.run_due(self.store)

    def _acknowledge_delivery(self, stored: list[tuple[str, str, int]]) -> None:
        """Tell each publisher which of its numbered envelopes are stored (or rejected for good)."""
        if self._client is None or not stored:
            return
        by_publisher: dict[tuple[str, str], list[int]] = {}
        for tenant, publisher, number in stored:
            by_publisher.setdefault((tenant, publisher), []).append(number)
        for (tenant, publisher), ids in by_publisher.items():
            self._client.publish(topic(tenant, TopicKind.ACKS, publisher), encode_ack(ids), qos=1)
            self.counters.delivery_acks += len(ids)

    def _outage(self, exc: BaseException, delay_s: float) -> None:
        if not self.counters.degraded:
            self.counters.store_outages += 1
            log.warning("ingest worker %s: store unavailable (%s); holding %s messages unacknowledged",
                        self.client_id, exc, self._queue.qsize())
        self.counters.degraded = 1
        time.sleep(delay_s)

    def _quarantine(self, m: _Message, exc: BaseException) -> list[tuple[str, str, int]]:
        """Keep a message the store refuses among the rejected ones, with the store's reason."""
        parsed = parse_topic(m.topic)
        reason = f"the store refused this message: {type(exc).__name__}: {exc}"[:MAX_REASON]
        log.warning("ingest worker %s: quarantined a message on %s: %s", self.client_id, m.topic, reason)
        self.store.add_rejected(parsed[0] if parsed else None, m.topic, reason, m.payload[:MAX_KEPT_PAYLOAD])
        self.counters.add({parsed[0] if parsed else None: Counter(rejected=1, quarantined=1)}, messages=1)
        number = envelope_id(m.payload)
        return [(parsed[0], parsed[2], number)] if parsed and number is not None else []

    def _ack(self, batch: list[_Message]) -> None:
        if self._client is not None:
            for m in batch:
                if m.qos > 0:
                    self._client.ack(m.mid, m.qos)

    def _commit(self, batch: list[_Message]) -> list[tuple[str, str, int]]:
        """Decode the batch, write its readings, events and rejections; counters move only once all is written.

        Returns (tenant, publisher, envelope id) of the numbered envelopes, for their delivery acknowledgements."""
        readings_by_tenant: dict[str, list] = {}
        events_by_tenant: dict[str, list] = {}
        rejections: list[tuple[str | None, _Message, str]] = []
        statuses: list[tuple[str, str, str]] = []
        numbered: list[tuple[str, str, int]] = []
        for m in batch:
            parsed = parse_topic(m.topic)
            if parsed is None:
                rejections.append((None, m, "topic does not follow the contract"))
                continue
            tenant, kind, device = parsed
            if kind == TopicKind.STATUS:
                status = m.payload[:16].decode(errors="replace").strip('"')
                if status in tuple(DeviceStatus) and self.store.is_registered(tenant, device):
                    statuses.append((tenant, device, status))
                continue
            decode = decode_telemetry if kind == TopicKind.TELEMETRY else decode_events
            decoded = decode(m.payload, tenant, device, self.store.registration)
            if decoded.envelope_id is not None:
                numbered.append((tenant, device, decoded.envelope_id))
            rejections += [(tenant, m, reason[:MAX_REASON]) for reason in decoded.rejections]
            readings_by_tenant.setdefault(tenant, []).extend(decoded.readings)
            events_by_tenant.setdefault(tenant, []).extend(decoded.events)
        tally: dict[str | None, Counter[str]] = defaultdict(Counter)
        for tenant, readings in readings_by_tenant.items():
            n = self.store.insert_readings(tenant, readings) if readings else 0
            self._rollups.note(tenant, readings)
            tally[tenant].update(readings_received=len(readings), readings_stored=n,
                                 readings_duplicate=len(readings) - n)
        for tenant, tenant_events in events_by_tenant.items():
            if tenant_events:
                tally[tenant]["events_stored"] += self.store.insert_events(tenant, tenant_events)
        for tenant, device, status in statuses:
            self.store.set_device_status(tenant, device, status)
        self.store.add_rejected_many([(t, m.topic, why, m.payload[:MAX_KEPT_PAYLOAD]) for t, m, why in rejections])
        for tenant, _, _ in rejections:
            tally[tenant]["rejected"] += 1
        self.counters.add(tally, messages=len(batch))
        return numbered

    def snapshot(self) -> IngestCounters:
        """A copy of the counters with the current queue depth, for /api/v1/metrics."""
        with COUNTERS_LOCK:  # the API's thread copies what the writer's thread adds to
            return replace(self.counters, queue_depth=self._queue.qsize(),
                           tenants={t: dict(c) for t, c in self.counters.tenants.items()})

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
        # a writer still busy, or stopped in a store outage, leaves messages unacknowledged: keep the session then
        drained = not self._writer.is_alive() and self._queue.empty() and not self.counters.degraded
        if self._client is not None:
            if release and drained:  # everything received is acknowledged: nothing is left for this session to hold
                props = Properties(PacketTypes.DISCONNECT)
                props.SessionExpiryInterval = 0
                self._client.disconnect(properties=props)
            else:
                self._client.disconnect()
            self._client.loop_stop()
