"""/metrics and completeness latency on a store of a few million readings (SQLite), through the REST API.

The store is built through the store's own write path (``insert_readings``, batches of 5,000 readings of the 9
quantities a home meter sends, one reading a minute per meter), so its counters are the ones ingest keeps. Each
endpoint is compared with what it did before counters were kept (counting the raw readings, the same SQL the store
ran), measured in the same run on the same file: the ratio is the figure to read on a shared machine.
Usage: python benchmarks/counters.py [--meters 1000] [--hours 50] [--queries 100]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient
from latency import p95_ms  # benchmarks/latency.py (the script's own folder is on sys.path)

from gridloop.contract import Quantity as Q
from gridloop.platform.api import create_app
from gridloop.platform.envelope import Reading
from gridloop.platform.store.base import DeviceRecord
from gridloop.platform.store.sqlite import SqliteStore

T0 = 1767225600000  # 2026-01-01T00:00Z
MINUTE, HOUR = 60_000, 3_600_000
TENANT = "bench"
HOME_QUANTITIES = (Q.ENERGY_ACTIVE_IMPORT, Q.VOLTAGE_L1, Q.VOLTAGE_L2, Q.VOLTAGE_L3, Q.CURRENT_L1, Q.CURRENT_L2,
                   Q.CURRENT_L3, Q.POWER_ACTIVE_TOTAL, Q.POWER_REACTIVE_TOTAL)
BATCH = 5000


def build(store: SqliteStore, meters: int, hours: int) -> tuple[int, float, float]:
    """Readings stored, seconds in insert_readings, seconds of it spent keeping the counters."""
    names = [q.value for q in HOME_QUANTITIES]
    counting = 0.0
    keep = store._count_stored

    def timed_count(*args, **kwargs) -> None:
        nonlocal counting
        t = time.perf_counter()
        keep(*args, **kwargs)
        counting += time.perf_counter() - t

    store._count_stored = timed_count  # type: ignore[method-assign]
    rng = random.Random(15)
    stored, inserting, batch = 0, 0.0, []
    for minute in range(hours * 60):
        ts = T0 + minute * MINUTE
        batch.extend(Reading(f"m{m:05d}", ts, minute, dict(zip(names, (rng.random() * 230,) * 9, strict=True)))
                     for m in range(meters))
        if len(batch) >= BATCH or minute == hours * 60 - 1:
            t = time.perf_counter()
            stored += store.insert_readings(TENANT, batch)
            inserting += time.perf_counter() - t
            batch = []
    store._count_stored = keep  # type: ignore[method-assign]
    return stored, inserting, counting


def _get(client: TestClient, path: str, **params) -> dict | str:
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text[:200]
    return r.json() if "json" in r.headers["content-type"] else r.text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--meters", type=int, default=1000)
    ap.add_argument("--hours", type=int, default=50)
    ap.add_argument("--queries", type=int, default=100)
    args = ap.parse_args()
    path = Path(tempfile.mkdtemp(prefix="gridloop-counters-")) / "store.db"
    store = SqliteStore(str(path))
    key = store.create_tenant(TENANT)
    store.put_devices([DeviceRecord(tenant=TENANT, id=f"m{m:05d}", type="electricity_meter",
                                    meta={"interval_s": 60}) for m in range(args.meters)])
    stored, inserting, counting = build(store, args.meters, args.hours)
    print(f"{stored:,} readings ({args.meters} meters x {args.hours} h at 1/min, 9 quantities) stored by"
          f" insert_readings in {inserting:.1f} s ({stored / inserting:,.0f} /s), of which keeping the counters"
          f" {counting:.1f} s ({100 * counting / inserting:.0f} %); store {path.stat().st_size / 1e6:.0f} MB")
    client = TestClient(create_app(store, None))
    client.headers["Authorization"] = f"Bearer {key}"
    db, rng = store._db, random.Random(1)
    assert _get(client, "/api/v1/metrics")["readings_stored"] == stored

    def day_span(aligned: bool) -> dict[str, int]:
        lo = T0 + rng.randrange(0, max(1, args.hours - 24)) * HOUR + (0 if aligned else rng.randrange(1, HOUR))
        return {"start": lo, "end": lo + 24 * HOUR}

    def old_completeness(span: dict[str, int]) -> None:  # what readings_per_device ran before (then the same API)
        db.execute("SELECT dev, count(*) FROM readings WHERE tenant=? AND ts>=? AND ts<? GROUP BY dev",
                   (TENANT, span["start"], span["end"])).fetchall()

    n_old = max(5, args.queries // 10)
    cases = [
        ("/api/v1/metrics", lambda: _get(client, "/api/v1/metrics"),
         lambda: db.execute("SELECT count(*) FROM readings WHERE tenant=?", (TENANT,)).fetchone()),
        ("/metrics (Prometheus)", lambda: _get(client, "/metrics"),
         lambda: db.execute("SELECT count(*) FROM readings WHERE tenant=?", (TENANT,)).fetchone()),
        ("completeness, one day on whole hours", lambda: _get(client, "/api/v1/completeness", **day_span(True)),
         lambda: old_completeness(day_span(True))),
        ("completeness, one day not on whole hours", lambda: _get(client, "/api/v1/completeness", **day_span(False)),
         lambda: old_completeness(day_span(False))),
    ]
    for name, new, old in cases:
        now_ms, before_ms = p95_ms(new, args.queries), p95_ms(old, n_old)
        print(f"{name}: p95 {now_ms:.1f} ms (target <= 50 ms); counting raw readings (store SQL only, {n_old} calls)"
              f" p95 {before_ms:.1f} ms; ratio {before_ms / now_ms:.1f}x")
    spans = [day_span(False) for _ in range(5)]
    for span in spans:  # the answers are the raw counts
        got = {d["device"]: d["received"] for d in _get(client, "/api/v1/completeness", **span)["devices"]}
        raw = dict(db.execute("SELECT dev, count(*) FROM readings WHERE tenant=? AND ts>=? AND ts<? GROUP BY dev",
                              (TENANT, span["start"], span["end"])).fetchall())
        assert got == raw
    print(f"completeness of {len(spans)} spans not on whole hours, {len(got)} devices each: equal to counts of the"
          " raw readings")
    store.close()


if __name__ == "__main__":
    main()
