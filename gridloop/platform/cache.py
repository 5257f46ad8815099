"""Cache of hot aggregate queries (D6.3 §5.2.5): answers come from stored results, refreshed in the background.

An answer is never older than ``max_age_s``: a fresh entry is served as is, a stale one is recomputed
before answering; a background thread refreshes entries asked for recently before they go stale, so hot
queries are answered from the cache. ``max_age_s == 0`` disables the cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class _Entry(Generic[T]):
    value: T
    as_of: float  # time.monotonic() when the computation that produced value started
    as_of_ms: int  # the same instant as epoch ms, reported to clients
    used: float  # last time.monotonic() a client asked for it


@dataclass
class CacheCounters:
    """How the cache answered, for /api/v1/metrics."""

    hits: int = 0
    misses: int = 0
    refreshes: int = 0
    refresh_errors: int = 0
    entries: int = 0


class QueryCache(Generic[T]):
    """Results of ``compute()`` per key, at most ``max_age_s`` old when served."""

    def __init__(self, max_age_s: float = 5.0, max_entries: int = 1024, idle_s: float = 60.0) -> None:
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self.idle_s = idle_s  # entries nobody asked for in this long are no longer refreshed, then dropped
        self.counters = CacheCounters()
        self._entries: OrderedDict[Hashable, _Entry[T]] = OrderedDict()
        self._computers: dict[Hashable, Callable[[], T]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.max_age_s > 0

    def get(self, key: Hashable, compute: Callable[[], T]) -> tuple[T, int]:
        """The value for key and the epoch ms of the data it reflects (no older than max_age_s)."""
        now = time.monotonic()
        if not self.enabled:
            return compute(), time.time_ns() // 1_000_000
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry.as_of <= self.max_age_s:
                entry.used = now
                self._entries.move_to_end(key)
                self.counters.hits += 1
                return entry.value, entry.as_of_ms
            self.counters.misses += 1
        entry = self._compute(compute)
        entry.used = now
        with self._lock:
            self._store(key, entry, compute)
        self._ensure_refresher()
        return entry.value, entry.as_of_ms

    @staticmethod
    def _compute(compute: Callable[[], T]) -> _Entry[T]:
        started, started_ms = time.monotonic(), time.time_ns() // 1_000_000
        return _Entry(compute(), started, started_ms, started)

    def _store(self, key: Hashable, entry: _Entry[T], compute: Callable[[], T]) -> None:
        old = self._entries.get(key)
        if old is not None and old.as_of > entry.as_of:
            return  # a newer computation won the race
        if old is not None:
            entry.used = max(entry.used, old.used)
        self._entries[key] = entry
        self._entries.move_to_end(key)
        self._computers[key] = compute
        while len(self._entries) > self.max_entries:
            gone, _ = self._entries.popitem(last=False)
            self._computers.pop(gone, None)
        self.counters.entries = len(self._entries)

    def _ensure_refresher(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._refresh_loop, name="query-cache", daemon=True)
                    self._thread.start()

    def _refresh_loop(self) -> None:
        """Recompute entries asked for recently once they are half their bound old; forget idle ones."""
        period = max(self.max_age_s / 4, 0.05)
        while not self._stop.wait(period):
            now = time.monotonic()
            with self._lock:
                due = []
                for key, entry in list(self._entries.items()):
                    if now - entry.used > self.idle_s:
                        del self._entries[key]
                        self._computers.pop(key, None)
                    elif now - entry.as_of >= self.max_age_s / 2:
                        due.append((key, self._computers[key]))
                self.counters.entries = len(self._entries)
            for key, compute in due:
                if self._stop.is_set():
                    return
                try:
                    entry = self._compute(compute)
                except Exception:  # the next client request recomputes (and sees the error) itself
                    log.exception("refreshing a cached query failed")
                    self.counters.refresh_errors += 1
                    continue
                with self._lock:
                    if key in self._entries:
                        self._store(key, entry, compute)
                        self.counters.refreshes += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
