"""A device integration adapter: batches meter readings into telemetry envelopes and publishes them (QoS 1).

Like a head-end system's adapter, it publishes as one device (``{dia}``) on behalf of many meters and
announces itself on the retained status topic with a last will. With an outbox it counts a reading as delivered
only once the platform acknowledged it as stored (end-to-end, :mod:`.delivery`), and resends what the broker
lost; without one, the broker's PUBACK is all it knows.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from collections.abc import Callable

import orjson
import paho.mqtt.client as mqtt

from gridloop.broker_accounts import platform_client_suffix
from gridloop.contract import BrokerAddress, DeviceStatus, TopicKind, topic
from gridloop.contract.telemetry import ENVELOPE_VERSION
from gridloop.mqtt_client import TlsFiles, connect
from gridloop.virtual_meters.delivery import PlatformDelivery
from gridloop.virtual_meters.electricity import MeterSample
from gridloop.virtual_meters.envelopes import encode_finite, join_samples, pack_envelopes, split_finite
from gridloop.virtual_meters.outbox import Outbox

RECONNECT_GRACE_S = 3.0
_OFFLINE = orjson.dumps(DeviceStatus.OFFLINE)  # the status payload, also the last will


class DeviceIntegrationAdapter:
    """Publishes readings of many meters to ``gridloop/v1/{tenant}/telemetry/{dia}``."""

    def __init__(self, broker: BrokerAddress, tenant: str, dia_id: str, batch: int = 500,
                 buffer_readings: int = 1_000_000, credentials: tuple[str, str] | None = None,
                 tls: TlsFiles | None = None, device_prefix: str = "", outbox: Outbox | None = None,
                 linger_s: float = 0.0) -> None:
        """``buffer_readings`` bounds what is held while the broker is away (0: no buffer, drop while away).

        ``outbox``: keep every envelope until the platform acknowledges it (on disk when the outbox has a file:
        a restarted DIA resends what its previous run left unacknowledged).

        ``linger_s``: readings of consecutive calls share envelopes for up to this much wall time (a fast run
        steps in milliseconds: one envelope per step would make the platform's per-message work the limit);
        0 sends every call's readings at once.

        ``device_prefix`` namespaces the meters' local ids (``m00001`` → ``s002-m00001``), as a head-end maps
        a site's meter numbers to the platform's device ids.
        """
        self.tenant = tenant
        self.device_prefix = device_prefix
        self.dia_id = dia_id
        self.batch = batch
        self.linger_s = linger_s  # how long a partly filled envelope may wait for more readings (wall time)
        self._waiting: list[MeterSample] = []  # not yet sent: lingering for more readings
        self._waiting_readings = 0
        self._waiting_since = 0.0
        self.buffering = buffer_readings > 0
        self.readings_offered = 0
        self.readings_acknowledged = 0  # by the platform (end to end) with an outbox, else by the broker
        self.broker_acknowledged = 0
        self.readings_dropped = 0  # not accepted for sending: broker away without a buffer, or buffer full
        self.events_published = 0
        self.on_publish: Callable[[MeterSample], None] | None = None  # told of each sample before it is published
        self._pending: dict[int, int] = {}  # mid -> readings in that message
        self._acked: collections.deque[int] = collections.deque()
        self._topic = topic(tenant, TopicKind.TELEMETRY, dia_id)
        status = topic(tenant, TopicKind.STATUS, dia_id)
        user, password = credentials or (None, None)
        # paho holds QoS 1 messages while disconnected and re-sends them on reconnect: that is the buffer
        self._broker = broker
        self._closed = threading.Event()
        self.delivery = PlatformDelivery(tenant, dia_id, outbox) if outbox is not None else None
        acks = [(self.delivery.acks_topic, 1)] if self.delivery else None
        # a secret suffix from its password: another tenant's account cannot take the id and kick it off
        self._client = connect(broker, f"gridloop-{tenant}-{dia_id}" + platform_client_suffix(credentials),
                               will=(status, _OFFLINE),
                               clean_start=False, session_expiry_s=3600, username=user, password=password,
                               max_queued_messages=max(1, -(-buffer_readings // batch)) if self.buffering else 0,
                               reconnect_on_failure=False, tls=tls, subscriptions=acks,
                               on_message=self.delivery.on_message if self.delivery else None)
        if self.delivery:
            self.delivery.start(self._client)
        self._client.on_disconnect = self._on_disconnect
        self._events_topic = topic(tenant, TopicKind.EVENTS, dia_id)
        self._client.on_publish = self._on_publish
        self._client.publish(status, orjson.dumps(DeviceStatus.ONLINE), qos=1, retain=True)
        self._status_topic = status

    def _on_disconnect(self, *args: object) -> None:
        if not self._closed.is_set():
            threading.Thread(target=self._come_back, name=f"dia-{self.dia_id}-reconnect", daemon=True).start()

    def _come_back(self) -> None:
        """Reconnect once the broker listens again, after a grace period.

        MQTT v5 shared subscriptions queue nothing for a group with no member connected, so what the DIA
        flushes before the platform's ingest has resubscribed would be dropped by the broker; the ingest
        reconnects within a second, the DIA waits a few.
        """
        while not self._closed.is_set():
            try:
                socket.create_connection((self._broker.host, self._broker.port), timeout=0.5).close()
            except OSError:
                self._closed.wait(0.5)
                continue
            if self.delivery is None:  # with end-to-end delivery what the broker drops is resent: no wait
                self._closed.wait(RECONNECT_GRACE_S)
            if self._closed.is_set():
                return  # closed meanwhile: no client left running behind close()
            try:
                self._client.reconnect()
                self._client.loop_start()
                return
            except OSError:
                self._closed.wait(0.5)

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, rc: object, props: object) -> None:
        self._acked.append(mid)  # resolved on the caller's thread: no lock shared with paho's

    def _reconcile(self) -> bool:
        """Count what was acknowledged; True once nothing published is left unacknowledged."""
        while self._acked:
            self.broker_acknowledged += self._pending.pop(self._acked.popleft(), 0)
        if self.delivery is None:
            self.readings_acknowledged = self.broker_acknowledged
            return not self._pending
        settled, self.readings_acknowledged = self.delivery.settled()  # one read: no ack between the two
        return settled and not self._pending

    def publish(self, *samples: MeterSample) -> None:
        """Send readings (one sampling instant's per sample), in envelopes of at most ``batch`` readings.

        Envelopes are encoded column-wise (byte-identical to one orjson dict per reading, a few times
        faster) and packed: consecutive envelopes (of the samples, of their groups of meters with the same
        quantities) share one while it holds at most ``batch`` readings. Readings carry their meter's own clock
        time when the meters have clocks. With an outbox, all the envelopes sent at once are kept in one
        transaction before the first is published. With ``linger_s``, readings wait (up to ``linger_s`` of wall
        time, until the next call after it, or until a ``batch`` of them waits) and are encoded together.
        """
        now = time.monotonic()
        if not self._waiting:
            self._waiting_since = now
        for sample in samples:
            if self.device_prefix:
                sample = sample.renamed([self.device_prefix + d for d in sample.devices])
            self._waiting.append(sample)
            self._waiting_readings += len(sample.devices)
            self.readings_offered += len(sample.devices)
        lingering = self.linger_s > 0 and now - self._waiting_since < self.linger_s
        if not lingering or self._waiting_readings >= self.batch:
            self._send_waiting()
        self._reconcile()

    def _send_waiting(self) -> None:
        """Encode, pack, number and publish the readings that wait."""
        envelopes: list[tuple[bytes, int]] = []
        if self.on_publish is not None:  # when the readings leave, not when they start to wait
            for sample in self._waiting:
                self.on_publish(sample)
        for sample in join_samples(self._waiting):  # samples of one kind as one: fewer, larger encodings
            for group in split_finite(sample):  # a quantity a meter lacks (NaN) is left out, never sent as null
                n = len(group.devices)
                envelopes += zip(encode_finite(group, self.batch), [min(self.batch, n - lo)
                                                                    for lo in range(0, n, self.batch)], strict=True)
        self._waiting, self._waiting_readings = [], 0
        envelopes = pack_envelopes(envelopes, self.batch)  # small envelopes as few full ones
        if not self.buffering and not self._client.is_connected():  # no buffer: what the broker misses is lost
            self.readings_dropped += sum(n for _, n in envelopes)
            return
        if self.delivery and envelopes:
            envelopes = list(zip(self.delivery.number_all(self._topic, envelopes), (n for _, n in envelopes),
                                 strict=True))
        for payload, size in envelopes:
            info = self._client.publish(self._topic, payload, qos=1)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                if self.delivery is None:  # with an outbox it stays due and goes out later
                    self.readings_dropped += size
                continue
            self._pending[info.mid] = size

    def publish_events(self, events: list[dict]) -> None:
        """Send meter events (outages, sags, last gasps) in one event envelope."""
        if not events:
            return
        if self.device_prefix:
            events = [{**e, "dev": self.device_prefix + e["dev"]} for e in events]
        payload = orjson.dumps({"v": ENVELOPE_VERSION, "events": events})
        if self.delivery:
            payload = self.delivery.number(self._events_topic, payload, 0)
        self._client.publish(self._events_topic, payload, qos=1)
        self.events_published += len(events)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Send what lingers, then wait until everything published is acknowledged (by the platform with an
        outbox, else by the broker)."""
        if self._waiting:
            self._send_waiting()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._reconcile():
                return True
            time.sleep(0.01)
        return self._reconcile()

    def close(self) -> None:
        self.flush(5.0)
        self._closed.set()
        self._client.publish(self._status_topic, _OFFLINE, qos=1, retain=True).wait_for_publish(2)
        self._client.disconnect()
        self._client.loop_stop()
        if self.delivery:  # what is still unacknowledged stays in the outbox file for the next run
            self.delivery.close()
