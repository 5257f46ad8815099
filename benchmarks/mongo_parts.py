"""MongoDB rollup parts before and after compaction: parts a one-day aggregate reads, and its latency (FerretDB).

A day of 1-minute readings of N meters (9 quantities, as a home meter sends) goes through the store's own write path,
folded every ``--fold-min`` minutes of data as ingest would (one part per resolution per fold; ingest folds every 5 s,
so a real day has up to 17,280 parts per resolution). The same aggregates are then timed before and after
``compact_rollup_parts`` on the same store in the same run, and their answers compared (they must be equal).
Usage: GRIDLOOP_TEST_MONGODB=mongodb://127.0.0.1:<port>/gl python benchmarks/mongo_parts.py [--meters 100]
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

import pymongo

from gridloop.contract import Quantity as Q
from gridloop.platform.envelope import Reading
from gridloop.platform.store.mongo import MongoStore

T0 = 1767225600000  # 2026-01-01T00:00Z
MINUTE, DAY = 60_000, 86_400_000
QUANTITIES = (Q.ENERGY_ACTIVE_IMPORT, Q.VOLTAGE_L1, Q.VOLTAGE_L2, Q.VOLTAGE_L3, Q.CURRENT_L1, Q.CURRENT_L2,
              Q.CURRENT_L3, Q.POWER_ACTIVE_TOTAL, Q.POWER_REACTIVE_TOTAL)


def build(store: MongoStore, meters: int, fold_min: int) -> tuple[int, float]:
    """A day of readings, folded every fold_min minutes of data; (readings, seconds)."""
    t0, stored = time.perf_counter(), 0
    for lo in range(T0, T0 + DAY, fold_min * MINUTE):
        batch = [Reading(f"m{m:04d}", ts, (ts - T0) // MINUTE, {q.value: 230.0 + (ts // MINUTE + m + j) % 17
                                                                 for j, q in enumerate(QUANTITIES)})
                 for ts in range(lo, lo + fold_min * MINUTE, MINUTE) for m in range(meters)]
        stored += store.insert_readings("bench", batch)
        store._fold("bench", {"t1": {"$lt": lo + fold_min * MINUTE}}, float("inf"))  # fold only: parts pile up
    return stored, time.perf_counter() - t0


def p95_ms(call, n: int) -> tuple[float, object]:
    lat, out = [], None
    for _ in range(n):
        t = time.perf_counter()
        out = call()
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    return lat[max(0, int(0.95 * n) - 1)], out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--meters", type=int, default=100)
    ap.add_argument("--fold-min", type=int, default=5)
    ap.add_argument("--queries", type=int, default=20)
    a = ap.parse_args()
    base = os.environ["GRIDLOOP_TEST_MONGODB"].rsplit("/", 1)[0]
    name = f"gl_parts_{uuid.uuid4().hex[:8]}"
    store = MongoStore(f"{base}/{name}")
    try:
        stored, build_s = build(store, a.meters, a.fold_min)
        print(f"{stored:,} readings ({a.meters} meters x 1 day at 1/min, 9 quantities) stored and folded every"
              f" {a.fold_min} min of data in {build_s:.1f} s")
        devices = [f"m{m:04d}" for m in range(min(100, a.meters))]
        cases = {"one meter, one day of 15m": (devices[:1], "15m"),
                 f"{len(devices)} meters, one day of 15m": (devices, "15m"),
                 "one meter, one day of 1m": (devices[:1], "1m")}

        def query(devs: list[str], res: str):
            return lambda: store.query_rollups("bench", devs, Q.POWER_ACTIVE_TOTAL.value, res, T0, T0 + DAY)

        parts = {res: store.db.rollup_parts.count_documents({"tenant": "bench", "res": res}) for res in ("1m", "15m")}
        before = {k: p95_ms(query(*v), a.queries) for k, v in cases.items()}
        t = time.perf_counter()
        merged = store.compact_rollup_parts("bench", T0 + 2 * DAY)
        compact_s = time.perf_counter() - t
        after_parts = {res: store.db.rollup_parts.count_documents({"tenant": "bench", "res": res})
                       for res in ("1m", "15m")}
        print(f"compaction: {merged:,} parts merged away in {compact_s:.1f} s; parts per resolution"
              f" 1m {parts['1m']:,} -> {after_parts['1m']:,}, 15m {parts['15m']:,} -> {after_parts['15m']:,}")
        for k, v in cases.items():
            now_ms, answer = p95_ms(query(*v), a.queries)
            assert answer == before[k][1] or [vars(b) for b in answer] == [vars(b) for b in before[k][1]], k
            print(f"{k}: p95 {before[k][0]:.1f} ms before, {now_ms:.1f} ms after compaction"
                  f" ({before[k][0] / now_ms:.1f}x); same answer")
    finally:
        store.close()
        with pymongo.MongoClient(f"{base}/{name}") as client:
            client.drop_database(name)


if __name__ == "__main__":
    main()
