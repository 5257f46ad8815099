"""Two ingest workers on one shared subscription; one is killed mid-stream (no goodbye, messages in flight)
and restarted: every reading is stored exactly once."""

from __future__ import annotations

import secrets
import threading
import time

import orjson

from gridloop.contract import BrokerAddress, topic
from gridloop.mqtt_client import connect, wait_for
from gridloop.platform.ingest import IngestWorker
from gridloop.platform.store import open_store
from gridloop.platform.store.base import DeviceRecord

METERS, ENVELOPES = 50, 300
T0 = 1767225600000  # 2026-01-01T00:00:00Z: inside the contract's timestamp bounds
Q = "electricity.voltage.l1"


def _crash(worker: IngestWorker) -> None:
    """Like a killed process: the writer stops, the socket drops, nothing is acknowledged or said goodbye."""
    worker._stop.set()
    worker._client.loop_stop()
    worker._client._sock_close()


def test_killed_and_restarted_worker_loses_and_doubles_nothing(broker_uri, tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    store.create_tenant("kr")
    store.put_devices([DeviceRecord(tenant="kr", id=f"m{i}", type="electricity_meter") for i in range(METERS)])
    broker = BrokerAddress.parse(broker_uri)
    group = f"kr-{secrets.token_hex(3)}"
    workers = [IngestWorker(store, broker, i, queue_size=8, batch_messages=4, group=group) for i in range(2)]
    for w in workers:
        w.start()
    publisher = connect(broker, f"kr-pub-{secrets.token_hex(3)}")

    def publish() -> None:
        for k in range(ENVELOPES):
            readings = [{"dev": f"m{i}", "ts": T0 + 10_000 * k, "seq": k, "q": {Q: float(k)}} for i in range(METERS)]
            publisher.publish(topic("kr", "telemetry", "dia"), orjson.dumps({"v": 1, "readings": readings}), qos=1)
            time.sleep(0.005)

    feeder = threading.Thread(target=publish)
    feeder.start()
    time.sleep(0.5)
    _crash(workers[1])  # mid-stream
    time.sleep(1.0)
    restarted = IngestWorker(store, broker, 1, queue_size=8, batch_messages=4, group=group)
    restarted.start()  # same client id and group: the broker hands it back what the dead one never acknowledged
    feeder.join()
    try:
        assert wait_for(lambda: store.count_readings("kr") == METERS * ENVELOPES, 60)
        time.sleep(1.0)  # nothing more may arrive
        assert store.count_readings("kr") == METERS * ENVELOPES
        assert workers[0].counters.readings_stored > 0 and restarted.counters.readings_stored > 0
        per_device = store.readings_per_device("kr", None, None)
        assert set(per_device.values()) == {ENVELOPES}
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        for w in (workers[0], restarted):
            w.stop()
        store.close()
