"""End-to-end latency under load: publish timestamped readings, watch the store for their commit.

The store keeps no receive time, so a probe device publishes one reading every ``period_s`` with
``ts`` = its wall-clock send time, and a read-only SQLite connection polls for it: latency =
time first seen committed − ts (publish → broker → ingest queue → batched commit).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from gridloop.contract import BrokerAddress, Quantity, Reading, TopicKind, topic
from gridloop.contract.telemetry import encode_envelope
from gridloop.mqtt_client import connect

QUANTITY = Quantity.POWER_ACTIVE_TOTAL


class LatencyProbe:
    """Publisher and watcher threads; ``samples`` holds (send wall time s, latency ms) per committed reading."""

    def __init__(self, broker_uri: str, tenant: str, device: str, store_path: Path, period_s: float = 0.2,
                 poll_s: float = 0.01, max_probes: int = 20_000) -> None:
        self.broker = BrokerAddress.parse(broker_uri)
        self.topic = topic(tenant, TopicKind.TELEMETRY, device)
        self.tenant, self.device, self.store_path = tenant, device, store_path
        self.period_s, self.poll_s, self.max_probes = period_s, poll_s, max_probes
        self.sent: dict[int, float] = {}  # ts ms → wall time sent
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()  # ends the watcher
        self._pub_stop = threading.Event()  # ends the publisher first
        self._threads = [threading.Thread(target=self._publish, name="study-probe-pub", daemon=True),
                         threading.Thread(target=self._watch, name="study-probe-watch", daemon=True)]
        self._lock = threading.Lock()

    def start(self) -> LatencyProbe:
        self._client = connect(self.broker, f"study-probe-{int(time.time() * 1000)}")
        for t in self._threads:
            t.start()
        return self

    def _publish(self) -> None:
        seq = 0
        while not self._pub_stop.is_set() and seq < self.max_probes:  # bounded in count and, via stop(), in time
            now = time.time()
            ts = int(now * 1000)
            with self._lock:
                if ts in self.sent:
                    ts += 1
                self.sent[ts] = now
            seq += 1
            body = encode_envelope([Reading(dev=self.device, ts=ts, seq=seq, q={QUANTITY: float(seq)})])
            self._client.publish(self.topic, body, qos=1)
            self._pub_stop.wait(self.period_s)

    def _watch(self) -> None:
        db = None
        seen: set[int] = set()
        while not self._stop.is_set():
            if db is None and self.store_path.exists():
                db = sqlite3.connect(f"file:{self.store_path}?mode=ro", uri=True, timeout=5)
            if db is not None:
                with self._lock:
                    pending = [ts for ts in self.sent if ts not in seen]
                if pending:
                    try:
                        rows = db.execute("SELECT ts FROM readings WHERE tenant=? AND dev=? AND ts>=?",
                                          (self.tenant, self.device, min(pending))).fetchall()
                    except sqlite3.OperationalError:  # schema not there yet, or the file is busy
                        rows = []
                    now = time.time()
                    for (ts,) in rows:
                        if ts not in seen and ts in self.sent:
                            seen.add(ts)
                            self.samples.append((self.sent[ts], (now - ts / 1000) * 1000))
            time.sleep(self.poll_s)
        if db is not None:
            db.close()

    def stop(self, grace_s: float = 2.0) -> None:
        """Stop publishing; keep watching a moment so the last probes can land."""
        self._pub_stop.set()
        self._threads[0].join(timeout=5)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and len(self.samples) < len(self.sent):
            time.sleep(0.05)
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def lost(self) -> int:
        return len(self.sent) - len(self.samples)
