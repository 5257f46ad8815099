"""Back-pressure and the MQTT keepalive: the store stalls 4 keepalives long under a full stream, with and without
MQTT v5 flow control (Receive Maximum = the ingest queue's size). Prints, for each, whether the broker dropped the
ingest's connection, how often the receive thread blocked, and what was stored (once? twice?).

Usage: python benchmarks/ingest_keepalive.py [--broker mqtt://127.0.0.1:1883] [--keepalive 1] [--stall 4]
(without --broker, an embedded Mosquitto)
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from pathlib import Path

import orjson

from gridloop.broker import EmbeddedBroker
from gridloop.contract import BrokerAddress, Quantity, TopicKind, topic
from gridloop.mqtt_client import connect, wait_for
from gridloop.platform.ingest import IngestWorker
from gridloop.platform.store import open_store
from gridloop.platform.store.base import DeviceRecord

T0 = 1_767_225_600_000
METERS, ENVELOPES = 10, 60


def run(broker: BrokerAddress, flow_control: bool, keepalive_s: int, stall_s: float) -> None:
    store = open_store(f"sqlite:///{Path(tempfile.mkdtemp()) / 'store.db'}")
    store.create_tenant("bp")
    store.put_devices([DeviceRecord(tenant="bp", id=f"m{i}", type="electricity_meter") for i in range(METERS)])
    worker = IngestWorker(store, broker, 0, queue_size=4, batch_messages=2, group=f"bp-{secrets.token_hex(3)}",
                          keepalive_s=keepalive_s)
    if not flow_control:
        worker._receive_maximum = None  # as before: the receive thread blocks on the full queue
    worker.start()
    publisher = connect(broker, f"bp-pub-{secrets.token_hex(3)}")
    with store._lock:  # the store stalls
        for k in range(ENVELOPES):
            readings = [{"dev": f"m{i}", "ts": T0 + 1000 * k + i, "seq": k, "q": {Quantity.VOLTAGE_L1.value: 1.0}}
                        for i in range(METERS)]
            publisher.publish(topic("bp", TopicKind.TELEMETRY, "dia"), orjson.dumps({"v": 1, "readings": readings}),
                              qos=1)
        time.sleep(stall_s)
        blocked = worker.counters.queue_full_waits
    released = time.monotonic()
    done = wait_for(lambda: store.count_readings("bp") == METERS * ENVELOPES, 60)
    c = worker.counters
    print(f"flow control {'on ' if flow_control else 'off'}: receive thread blocked {blocked}x, broker dropped the "
          f"connection {c.disconnects}x; stored {store.count_readings('bp')}/{METERS * ENVELOPES} "
          f"({'all' if done else 'NOT all'}) {time.monotonic() - released:.1f} s after the stall, "
          f"{c.readings_duplicate} readings received twice")
    publisher.disconnect()
    publisher.loop_stop()
    worker.stop()
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker")
    parser.add_argument("--keepalive", type=int, default=1)
    parser.add_argument("--stall", type=float, default=4.0)
    args = parser.parse_args()
    embedded = None if args.broker else EmbeddedBroker().start()
    broker = BrokerAddress.parse(args.broker) if args.broker else embedded.address
    try:
        for flow_control in (False, True):
            run(broker, flow_control, args.keepalive, args.stall)
    finally:
        if embedded:
            embedded.stop()


if __name__ == "__main__":
    main()
