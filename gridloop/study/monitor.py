"""Watch a running point: CPU and memory of broker, platform and simulator, and the store's counter over time."""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass, field

import httpx

from gridloop.study.procstat import ProcSample, descendants, sample


@dataclass
class Usage:
    """CPU seconds used while watched and the largest resident memory seen, per process."""

    cpu_s: float = 0.0
    rss_max_bytes: int = 0
    peak_rss_bytes: int = 0


@dataclass
class Timeline:
    """(wall time s, readings stored) pairs from the platform's ingest counters."""

    points: list[tuple[float, int]] = field(default_factory=list)

    def active_window(self, min_increase: int = 10) -> tuple[float, float] | None:
        """From the sample before the first rise of more than ``min_increase`` to the last such rise.

        The threshold keeps the latency probe's few readings per sample from counting as load.
        """
        start = end = None
        for (t0, n0), (t1, n1) in itertools.pairwise(self.points):
            if n1 - n0 > min_increase:
                start = t0 if start is None else start
                end = t1
        return (start, end) if start is not None and end is not None else None


class Monitor(threading.Thread):
    """Samples every ``period_s`` until stopped, at most ``max_samples`` times (bounded).

    ``api_key`` is the platform's admin key: /api/v1/admin/metrics answers the replica's ingest counters over all
    tenants without touching the store, so polling it costs the platform next to nothing.
    """

    def __init__(self, pids: dict[str, int], api_url: str, api_key: str, period_s: float = 0.5,
                 max_samples: int = 20_000) -> None:
        super().__init__(name="study-monitor", daemon=True)
        self.pids = {**pids, "simulator": os.getpid()}
        self.period_s, self.max_samples = period_s, max_samples
        self.first: dict[str, ProcSample] = {}
        self.last: dict[str, ProcSample] = {}
        self.rss_max: dict[str, int] = {}
        self.tree_rss_max = 0  # the simulator with its own children (partitions, service processes)
        self.timeline = Timeline()
        self.ingest: dict[str, int] = {}  # the platform's ingest counters at the last sample
        self._http = httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10)
        self._halt = threading.Event()

    def _tick(self) -> None:
        for name, pid in self.pids.items():
            s = sample(pid)
            if s is None:
                continue
            self.first.setdefault(name, s)
            self.last[name] = s
            self.rss_max[name] = max(self.rss_max.get(name, 0), s.rss_bytes)
        services = set(self.pids.values())
        tree = [sample(p) for p in descendants(os.getpid()) if p not in services]
        own = self.last.get("simulator")
        self.tree_rss_max = max(self.tree_rss_max, sum(t.rss_bytes for t in tree if t is not None)
                                + (own.rss_bytes if own is not None else 0))
        try:
            self.ingest = dict(self._http.get("/api/v1/admin/metrics").json()["ingest"])
            self.timeline.points.append((time.time(), int(self.ingest.get("readings_stored", 0))))
        except (httpx.HTTPError, KeyError, ValueError):
            pass

    def run(self) -> None:
        for _ in range(self.max_samples):
            self._tick()
            if self._halt.wait(self.period_s):
                break

    def stop(self, children_cpu_s: float = 0.0) -> dict[str, Usage]:
        """Take a last sample and return each process's usage over the watched span; the simulator's includes
        ``children_cpu_s`` (its partitions and service processes, reaped during the span) and their memory."""
        self._halt.set()
        self.join(timeout=15)
        self._tick()
        self._http.close()
        usage = {name: Usage(self.last[name].cpu_s - self.first[name].cpu_s, self.rss_max.get(name, 0),
                             self.last[name].peak_rss_bytes) for name in self.last}
        if "simulator" in usage:
            sim = usage["simulator"]
            usage["simulator"] = Usage(sim.cpu_s + children_cpu_s, max(sim.rss_max_bytes, self.tree_rss_max),
                                       sim.peak_rss_bytes)
        return usage
