"""Back-pressure: when the store stalls, ingest stops taking messages (bounded queue, no PUBACK) instead of
growing without bound, and once the store is back everything is stored exactly once.

The stall outlasts the MQTT keepalive several times over: MQTT v5 flow control (Receive Maximum = the queue's size)
makes the broker hold the backlog, so paho's network loop never blocks on a full queue, keeps answering
keepalives, and the broker never drops the worker's connection."""

from __future__ import annotations

import secrets
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
T0 = 1767225600000  # 2026-01-01T00:00:00Z: inside the contract's timestamp bounds
Q = "electricity.voltage.l1"


def test_a_stalled_store_holds_the_stream_back_and_loses_nothing(broker_uri, tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    store.create_tenant("bp")
    store.put_devices([DeviceRecord(tenant="bp", id=f"m{i}", type="electricity_meter") for i in range(10)])
    broker = BrokerAddress.parse(broker_uri)
    worker = IngestWorker(store, broker, 0, queue_size=4, batch_messages=2, group=f"bp-{secrets.token_hex(3)}",
                          keepalive_s=KEEPALIVE_S)
    worker.start()
    publisher = connect(broker, f"bp-pub-{secrets.token_hex(3)}")
    try:
        with store._lock:  # a real stall: the SQLite store is busy (as under a long query or a full disk)
            for k in range(60):
                readings = [{"dev": f"m{i}", "ts": T0 + 1_000 * k + i, "seq": k, "q": {Q: float(k)}} for i in range(10)]
                publisher.publish(topic("bp", "telemetry", "dia"), orjson.dumps({"v": 1, "readings": readings}),
                                  qos=1)
            time.sleep(STALL_S)
            held = worker.counters
            assert held.readings_stored == 0
            # bounded: Receive Maximum 4 un-acknowledged, of which the stalled writer's batch holds 1 or 2; never full
            assert worker._queue.qsize() in (2, 3)
            assert held.queue_full_waits == 0  # the receive thread never waited: the broker holds the rest
            assert held.disconnects == 0  # and it kept answering keepalives: the broker kept the connection
        # the counters move once the whole batch is written, a moment after its readings are committed
        assert wait_for(lambda: store.count_readings("bp") == 600 and worker.counters.readings_stored == 600, 30)
        assert worker.counters.readings_duplicate == 0
        assert worker.counters.disconnects == 0 and worker.counters.at_most_once_dropped == 0
        assert store.insert_readings("bp", [Reading("m0", T0, 0, {Q: 0.0})]) == 0  # already there, once
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        worker.stop()
        store.close()
