"""Back-pressure: when the store stalls, ingest stops taking messages (bounded queue, no PUBACK) instead of
growing without bound, and once the store is back everything is stored exactly once.

The stall outlasts the MQTT keepalive several times over: MQTT v5 flow control (Receive Maximum = the queue's size)
makes the broker hold the backlog, so paho's network loop never blocks on a full queue, keeps answering
keepalives, and the broker never drops the worker's connection.

Checked on the wire, from the worker's socket (paho's packet log), not from the worker's own state: during the stall
the broker delivers exactly Receive Maximum PUBLISH packets (none of them can be acknowledged) although three times
the queue's size are waiting, and keepalive PINGREQs keep getting their PINGRESPs. Without Receive Maximum the
broker sends more than the queue holds, the network loop blocks in on_message and no PINGRESP is read: both fail
every time (whether the broker also drops the connection meanwhile varies, so that is not what is checked)."""

from __future__ import annotations

import secrets
import threading
import time

import orjson

from gridloop.contract import BrokerAddress, topic
from gridloop.mqtt_client import connect, wait_for
from gridloop.platform.envelope import Reading
from gridloop.platform.ingest import IngestWorker
from gridloop.platform.store import open_store
from gridloop.platform.store.base import DeviceRecord

KEEPALIVE_S = 1  # the broker drops a client silent for 1.5 keepalives
STALL_S = 4.0  # well past that
QUEUE = 4  # the worker's queue, and so its Receive Maximum
T0 = 1767225600000  # 2026-01-01T00:00:00Z: inside the contract's timestamp bounds
Q = "electricity.voltage.l1"


class Wire:
    """What the worker's MQTT client received, packet by packet (paho logs each one as it reads it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.publishes = 0
        self.pingresps = 0

    def on_log(self, client, userdata, level, line: str) -> None:
        with self._lock:
            self.publishes += line.startswith("Received PUBLISH")
            self.pingresps += line == "Received PINGRESP"

    def take(self) -> tuple[int, int]:
        with self._lock:
            counts, self.publishes, self.pingresps = (self.publishes, self.pingresps), 0, 0
        return counts


def _envelope(k: int) -> bytes:
    readings = [{"dev": f"m{i}", "ts": T0 + 1_000 * k + i, "seq": k, "q": {Q: float(k)}} for i in range(10)]
    return orjson.dumps({"v": 1, "readings": readings})


def test_a_stalled_store_holds_the_stream_back_and_loses_nothing(broker_uri, tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    store.create_tenant("bp")
    store.put_devices([DeviceRecord(tenant="bp", id=f"m{i}", type="electricity_meter") for i in range(10)])
    broker = BrokerAddress.parse(broker_uri)
    # worker 1: no retained status subscription, only this test's telemetry reaches it
    worker = IngestWorker(store, broker, 1, queue_size=QUEUE, batch_messages=2, group=f"bp-{secrets.token_hex(3)}",
                          keepalive_s=KEEPALIVE_S)
    worker.start()
    wire = Wire()
    worker._client.on_log = wire.on_log
    publisher = connect(broker, f"bp-pub-{secrets.token_hex(3)}")
    envelopes = 1 + 3 * QUEUE
    try:
        publisher.publish(topic("bp", "telemetry", "dia"), _envelope(0), qos=1)  # subscribed and flowing
        assert wait_for(lambda: worker.counters.readings_stored == 10, 10)  # stored, counted (and so acknowledged)
        with store._lock:  # a real stall: the SQLite store is busy (as under a long query or a full disk)
            wire.take()
            for k in range(1, envelopes):
                publisher.publish(topic("bp", "telemetry", "dia"), _envelope(k), qos=1).wait_for_publish(5)
            time.sleep(STALL_S)
            delivered, pingresps = wire.take()
            assert worker.counters.readings_stored == 10  # nothing more stored, so nothing more acknowledged
            assert delivered == QUEUE  # the broker filled the window and held the other 2 x QUEUE back
            assert pingresps >= STALL_S / KEEPALIVE_S - 2  # the network loop kept the keepalive going
            assert worker.counters.queue_full_waits == 0
        # the counters move once the whole batch is written, a moment after its readings are committed
        total = 10 * envelopes
        assert wait_for(lambda: store.count_readings("bp") == total and worker.counters.readings_stored == total, 30)
        assert worker.counters.readings_duplicate == 0
        assert worker.counters.disconnects == 0 and worker.counters.at_most_once_dropped == 0
        assert store.insert_readings("bp", [Reading("m0", T0, 0, {Q: 0.0})]) == 0  # already there, once
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        worker.stop()
        store.close()
