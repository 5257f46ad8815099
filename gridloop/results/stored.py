"""What the platform stored of a run, as its REST API reports it: readings per meter and per simulated day."""

from __future__ import annotations

import time
from typing import Protocol

import numpy as np

from gridloop.contract.rest import Completeness

CLOCK_SLACK_MS = 6 * 3600 * 1000  # meters with drifting clocks stamp readings outside the simulated span
DAY_MS = 86_400_000


class CompletenessApi(Protocol):
    def completeness(self, start_ms: int, end_ms: int) -> Completeness: ...


def wait_stored(api: CompletenessApi, start_ms: int, end_ms: int, target: int, timeout_s: float) -> int:
    """Readings the platform stored for this run's meters, once it has caught up (or stopped moving)."""
    start_ms, end_ms = start_ms - CLOCK_SLACK_MS, end_ms + CLOCK_SLACK_MS
    deadline = time.monotonic() + timeout_s
    last, still_since = -1, time.monotonic()
    while True:
        got = sum(d.received for d in api.completeness(start_ms, end_ms).devices)
        if got >= target:
            return got
        now = time.monotonic()
        if got != last:
            last, still_since = got, now
        elif now - still_since > 10 or now > deadline:
            return got
        time.sleep(0.1)


def completeness_per_day(api: CompletenessApi, start_ms: int, end_ms: int) -> dict:
    """Expected vs stored readings per meter per simulated day, as the platform reports them."""
    days, per_meter = [], {}
    for lo in range(start_ms, end_ms, DAY_MS):
        hi = min(lo + DAY_MS, end_ms)
        report = api.completeness(lo, hi).devices
        ratios = [d.ratio for d in report]
        days.append({"start_ms": lo, "end_ms": hi, "mean": round(float(np.mean(ratios)), 6) if ratios else 1.0,
                     "min": round(float(np.min(ratios)), 6) if ratios else 1.0,
                     "meters_below_99_percent": sum(r < 0.99 for r in ratios)})
        for d in report:
            per_meter.setdefault(d.device, []).append({"expected": d.expected, "received": d.received})
    return {"per_day": days, "per_meter": per_meter}
