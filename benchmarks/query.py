"""Aggregate query latency through the REST API (FastAPI in-process) on the SQLite store.

30 days of rollups for 1,000 meters are generated directly into the rollups table (not ingested:
30 days of 10 s raw data is 259 M readings); one quantity, resolutions 15m, 1h and 1d only.
Usage: python benchmarks/query.py [--meters 1000] [--days 30] [--queries 200] [--cache-max-age-s 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from gridloop.contract import Quantity
from gridloop.platform.api import create_app
from gridloop.platform.store.base import AssetRecord, DeviceRecord
from gridloop.platform.store.sqlite import SqliteStore

T0 = 1767225600000
Q = Quantity.POWER_ACTIVE_TOTAL
DAY = 86_400_000


def fill(store: SqliteStore, tenant: str, meters: int, days: int) -> int:
    """Rollup rows as ingest would have written them for 10 s readings (n=90 per 15 min)."""
    rng = random.Random(1)
    rows = 0
    for width, n in ((900_000, 90), (3_600_000, 360), (DAY, 8640)):
        batch = []
        for m in range(meters):
            for b in range(T0, T0 + days * DAY, width):
                mean = 500 + rng.random() * 100
                batch.append((tenant, f"m{m:04d}", Q, width, b, n, mean * n, mean - 50, mean + 50,
                              b, mean, b + width - 10_000, mean))
            if len(batch) > 200_000:
                store._db.executemany("INSERT INTO rollups VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
                rows += len(batch)
                batch = []
        store._db.executemany("INSERT INTO rollups VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
        rows += len(batch)
    return rows


def timed(client: TestClient, path: str, params: dict, queries: int, expect: int) -> tuple[float, float]:
    lat = []
    for _ in range(queries):
        day = random.randrange(0, 29)
        p = {**params, "start": T0 + day * DAY, "end": T0 + (day + 1) * DAY}
        t0 = time.perf_counter()
        r = client.get(path(), params=p) if callable(path) else client.get(path, params=p)
        lat.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200 and len(r.json()["buckets"]) == expect, r.text[:200]
    lat.sort()
    return statistics.median(lat), lat[int(0.95 * len(lat)) - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--meters", type=int, default=1000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--cache-max-age-s", type=float, default=5.0, help="bound of the cache for the hot-query case")
    args = ap.parse_args()
    path = Path(tempfile.mkdtemp(prefix="gridloop-query-")) / "store.db"
    store = SqliteStore(str(path))
    key = store.create_tenant("bench")
    store.put_asset(AssetRecord("bench", "feeder-1", "feeder"))
    store.put_devices([DeviceRecord(tenant="bench", id=f"m{m:04d}", type="electricity_meter",
                                    asset="feeder-1" if m < 100 else None) for m in range(args.meters)])
    t0 = time.perf_counter()
    store._db.execute("BEGIN")
    rows = fill(store, "bench", args.meters, args.days)
    store._db.execute("COMMIT")
    print(f"{rows:,} rollup rows ({args.meters} meters x {args.days} days; 15m, 1h, 1d) written in"
          f" {time.perf_counter() - t0:.1f} s; store {path.stat().st_size / 1e6:.0f} MB")
    client = TestClient(create_app(store, None))
    client.headers["Authorization"] = f"Bearer {key}"
    params = {"quantity": Q, "interval": "15m", "agg": "mean"}
    p50, p95 = timed(client, lambda: f"/api/v1/devices/m{random.randrange(args.meters):04d}/aggregates", params,
                     args.queries, 96)
    print(f"one meter, one day, 15-min mean: p50 {p50:.1f} ms, p95 {p95:.1f} ms (target p95 <= 20 ms)")
    p50, p95 = timed(client, "/api/v1/assets/feeder-1/aggregates", params, max(20, args.queries // 4), 96)
    print(f"100-meter asset, one day, 15-min mean: p50 {p50:.1f} ms, p95 {p95:.1f} ms (target p95 <= 200 ms)")
    # hot queries (a dashboard polling the same feeder): answered from the cache, never older than its bound
    cached = TestClient(create_app(store, None, cache_max_age_s=args.cache_max_age_s))
    cached.headers["Authorization"] = f"Bearer {key}"
    hot = {**params, "start": T0 + 3 * DAY, "end": T0 + 4 * DAY}
    lat = []
    for _ in range(max(20, args.queries // 2)):
        t0 = time.perf_counter()
        r = cached.get("/api/v1/assets/feeder-1/aggregates", params=hot)
        lat.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200 and len(r.json()["buckets"]) == 96
    first, lat = lat[0], sorted(lat[1:])
    print(f"100-meter asset, the same day asked again (cache bound {args.cache_max_age_s} s): first {first:.1f} ms,"
          f" then p50 {statistics.median(lat):.1f} ms, p95 {lat[int(0.95 * len(lat)) - 1]:.1f} ms")
    cached.app.state.query_cache.stop()
    store.close()


if __name__ == "__main__":
    main()
