"""Latency of a call, for the query benchmarks: the 95th percentile of ``n`` timed calls, in milliseconds."""

from __future__ import annotations

import time
from collections.abc import Callable


def p95_ms(call: Callable[[], object], n: int) -> float:
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    return lat[max(0, int(0.95 * len(lat)) - 1)]
