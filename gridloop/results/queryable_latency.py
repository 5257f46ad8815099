"""Publish → queryable latency, measured during a run: how long after a DIA publishes a reading the platform's REST
API returns it.

The probe watches a few meters. The DIA tells it when it hands a sample to MQTT (``published``, on the stepping
thread: a few list look-ups); a thread asks the API for each probe meter's readings newer than the last it saw,
every ``poll_s``, and times each new one against its publication. A figure is therefore high by at most ``poll_s``.
It reaches the platform only over REST, like any other client.
"""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np

from gridloop.contract.summary import QueryableLatency
from gridloop.sdk import PlatformClient, PlatformError
from gridloop.virtual_meters.electricity import MeterSample

PROBE_METERS = 4
POLL_S = 0.25


def probe_meters(meters_per_substation: list[list[str]], owned: set[str] | None,
                 count: int = PROBE_METERS) -> list[str]:
    """``count`` home meters spread evenly over the run's (over its substations, one each, when it has several),
    of those this process publishes."""
    per_unit = [[m for m in ids if owned is None or m in owned] for ids in meters_per_substation]
    pool = per_unit[0] if len(per_unit) == 1 else [ids[0] for ids in per_unit if ids]
    if not pool:
        return []
    return list(dict.fromkeys(pool[round(k * (len(pool) - 1) / max(1, count - 1))] for k in range(count)))


class QueryableProbe:
    """Times probe meters' readings from publication to the first API answer that holds them."""

    def __init__(self, base_url: str, api_key: str | None, meters: list[str], poll_s: float = POLL_S) -> None:
        self.meters = meters
        self.poll_s = poll_s
        self._api = PlatformClient(base_url, api_key, timeout_s=10.0)
        self._published: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()
        self._newest = dict.fromkeys(meters, -1)
        self._latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queryable-probe", daemon=True)

    def start(self) -> QueryableProbe:
        self._thread.start()
        return self

    def published(self, sample: MeterSample) -> None:
        """The DIA is about to publish ``sample``: note when, for the probe meters in it."""
        now = time.monotonic()
        meter_ts = getattr(sample, "meter_ts_ms", None)
        for meter in self.meters:
            try:
                i = sample.devices.index(meter)
            except ValueError:
                continue
            ts = int(sample.ts_ms if meter_ts is None else meter_ts[i])
            with self._lock:
                self._published.setdefault((meter, ts), now)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.poll()

    def poll(self) -> None:
        """Ask for each probe meter's readings newer than the last seen; time those the probe saw published."""
        for meter in self.meters:
            try:
                readings = self._api.readings(meter, start=self._newest[meter] + 1)
            except (PlatformError, httpx.HTTPError):
                continue  # a busy platform answers later: the latency grows, nothing is lost
            now = time.monotonic()
            with self._lock:
                for r in readings:
                    sent = self._published.pop((meter, r.ts), None)
                    if sent is not None:
                        self._latencies.append(now - sent)
                    self._newest[meter] = max(self._newest[meter], r.ts)

    def close(self) -> None:
        """Stop polling (also when the run fails before ``finish``)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._api.close()

    def finish(self) -> QueryableLatency:
        """Stop polling after one last poll (call once the run's readings are stored); the figures."""
        self._stop.set()
        self._thread.join()
        self.poll()
        self.close()
        lat = np.array(self._latencies)
        stats = ({k: round(float(np.percentile(lat, q)), 3) for k, q in (("p50_s", 50), ("p99_s", 99))}
                 | {"max_s": round(float(lat.max()), 3)}) if len(lat) else {}
        return QueryableLatency(meters=self.meters, readings=len(lat), unseen=len(self._published),
                                poll_s=self.poll_s, **stats)
