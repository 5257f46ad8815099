"""Query latency on the store of a real run: the pilot-scale scenario (scenarios/scale-10k-1hz.yaml: 10,300 meters
at 1 Hz, 100 substations of 1-LV-urban6, 2 min real time) run with ``run_scenario`` on the embedded SQLite store,
then asked through the REST API (FastAPI in-process, on that run's store file) as a user would.

Each query is measured beside a reference in the same run, on the same file: the store's own call or SQL without
the API (aggregates, raw readings), or counting the raw rows as the store did before counters were kept (/metrics,
completeness). Answers are read as bytes (a client's JSON parsing of 10,000 devices is not the server's time), and
the server's own time (the request through the app, middleware to response, without the in-process test client's
transport) is printed beside the client's.
The run has no asset of 100 meters (its assets are buses) nor an hour of readings: the benchmark registers the
asset ``bench-100`` over 100 of the run's meters, and stores one hour of 1 Hz readings of one more meter
(``bench-1h``, 9 quantities, through ``insert_readings``) after the run.
Usage: python benchmarks/query_real_run.py [--duration 2min] [--substations 100] [--queries 50] [--out DIR]
       [--store RUN_DIR/store.db]
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from gridloop.contract import Quantity as Q
from gridloop.engine.run import RunOptions, run_scenario
from gridloop.platform.api import create_app
from gridloop.platform.envelope import Reading
from gridloop.platform.store.base import AssetRecord
from gridloop.platform.store.records import hash_key, new_api_key
from gridloop.platform.store.sqlite import SqliteStore
from gridloop.scenario.loader import load_scenario

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "scale-10k-1hz.yaml"
HOUR, DAY = 3_600_000, 86_400_000
P = Q.POWER_ACTIVE_TOTAL.value
HOME = (Q.ENERGY_ACTIVE_IMPORT, Q.VOLTAGE_L1, Q.VOLTAGE_L2, Q.VOLTAGE_L3, Q.CURRENT_L1, Q.CURRENT_L2, Q.CURRENT_L3,
        Q.POWER_ACTIVE_TOTAL, Q.POWER_REACTIVE_TOTAL)


def seconds(text: str) -> float:
    return float(text[:-3]) * 60 if text.endswith("min") else float(text.rstrip("s"))


def p95(call: Callable[[], object], n: int, server: list[float] | None = None) -> float:
    """p95 in ms of n calls; with ``server``, of the times the calls appended there instead."""
    if server is not None:
        del server[:]
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        lat.append((time.perf_counter() - t) * 1000)
    lat = sorted(server) if server is not None else sorted(lat)
    return lat[max(0, int(0.95 * len(lat)) - 1)]


def timed_app(store: SqliteStore, server_ms: list[float]) -> FastAPI:
    """The platform's API, each request's time in the app appended to ``server_ms``."""
    app = create_app(store, None)

    @app.middleware("http")
    async def server_time(request: Request, call_next):
        t = time.perf_counter()
        response = await call_next(request)
        server_ms.append((time.perf_counter() - t) * 1000)
        return response

    return app


def run(args: argparse.Namespace) -> None:
    """The run, in a process of its own: the measuring process holds only the API (as a served API would), not
    the run's heap (a full garbage collection of it lands inside the timed queries)."""
    s = load_scenario(SCENARIO)
    s = s.model_copy(update={"grid": s.grid.model_copy(update={"substations": args.substations})})
    out = Path(args.out)
    t = time.perf_counter()
    summary = run_scenario(s, RunOptions(out=out, until=seconds(args.duration), progress=False))
    m = summary.messages
    print(f"run: {args.substations} substations, {args.duration} real time, {time.perf_counter() - t:.0f} s wall;"
          f" sampled {m.readings_sampled:,}, stored {m.readings_stored:,}; late steps {summary.realtime.late_steps},"
          f" max lag {summary.realtime.max_lag_s:.2f} s")


def prepare(store: SqliteStore, tenant: str) -> tuple[str, list[str], int]:
    """An API key for the run's tenant, the asset of 100 meters, one hour of 1 Hz readings of one more meter."""
    key = new_api_key()
    store._db.execute("UPDATE tenants SET key_hash=? WHERE name=?", (hash_key(key), tenant))
    with_readings = set(store.readings_per_device(tenant, None, None)) - {"bench-1h"}  # the run's meters
    meters = [d for d in store.list_devices(tenant) if d.id in with_readings]
    t_end = store._db.execute("SELECT max(ts) FROM readings WHERE tenant=? AND dev=?", (tenant, meters[0].id)
                              ).fetchone()[0]
    store.put_asset(AssetRecord(tenant, "bench-100", "feeder"))
    store.put_devices([dataclasses.replace(d, asset="bench-100") for d in meters[:100]])
    one = dataclasses.replace(meters[0], id="bench-1h", asset=None)
    store.put_devices([one])
    hour0 = t_end - t_end % HOUR + HOUR
    readings = [Reading("bench-1h", hour0 + k * 1000, k, {q.value: 230.0 + k % 7 for q in HOME}) for k in range(3600)]
    for i in range(0, 3600, 500):
        store.insert_readings(tenant, readings[i:i + 500])  # a store measured before: stored already, 0 added
    return key, [d.id for d in meters], hour0


def measure(store: SqliteStore, client: TestClient, server_ms: list[float], tenant: str, meters: list[str],
            hour0: int, queries: int) -> None:
    db, rng = store._db, random.Random(15)
    t_lo, t_hi = db.execute("SELECT min(ts), max(ts) FROM readings WHERE tenant=? AND dev=?",
                            (tenant, meters[0])).fetchone()
    day = t_lo - t_lo % DAY

    def api(path: str, **params) -> bytes:
        r = client.get(path, params=params)
        assert r.status_code == 200, r.text[:300]
        return r.content

    agg = {"quantity": P, "interval": "15m", "agg": "mean", "start": day, "end": day + DAY}
    asset = [d.id for d in store.list_devices(tenant) if d.asset == "bench-100"]
    raw_sql = "SELECT ts, seq, shape, v FROM readings WHERE tenant=? AND dev=? AND ts>=? AND ts<? ORDER BY ts LIMIT ?"

    def off_hours(days: int) -> tuple[int, int]:  # ends inside the run's readings, at any millisecond
        hi = rng.randrange(t_lo + 1, t_hi + 1)
        return hi - days * DAY, hi

    def completeness(span: tuple[int, int]) -> bytes:
        return api("/api/v1/completeness", start=span[0], end=span[1])

    def counted_raw(span: tuple[int, int]) -> dict[str, int]:  # what completeness ran before the counters
        return dict(db.execute("SELECT dev, count(*) FROM readings WHERE tenant=? AND ts>=? AND ts<? GROUP BY dev",
                               (tenant, *span)))

    count_sql = "SELECT count(*) FROM readings WHERE tenant=?"
    cases = [
        ("one meter, one day, 15-min mean (target 20 ms)", "the store's query_rollups",
         lambda: api(f"/api/v1/devices/{rng.choice(meters)}/aggregates", **agg),
         lambda: store.query_rollups(tenant, [rng.choice(meters)], P, "15m", day, day + DAY)),
        (f"asset of {len(asset)} meters, one day, 15-min mean (target 200 ms)", "the store's query_rollups",
         lambda: api("/api/v1/assets/bench-100/aggregates", **agg),
         lambda: store.query_rollups(tenant, asset, P, "15m", day, day + DAY)),
        ("one hour of 1 Hz raw readings of one meter, 3,600 (target 50 ms)", "the store's SQL",
         lambda: api("/api/v1/devices/bench-1h/readings", start=hour0, end=hour0 + HOUR, limit=3600),
         lambda: db.execute(raw_sql, (tenant, "bench-1h", hour0, hour0 + HOUR, 3600)).fetchall()),
        ("/api/v1/metrics (target 50 ms)", "counting raw rows",
         lambda: api("/api/v1/metrics"), lambda: db.execute(count_sql, (tenant,)).fetchone()),
        ("/metrics, Prometheus (target 50 ms)", "counting raw rows",
         lambda: api("/metrics"), lambda: db.execute(count_sql, (tenant,)).fetchone()),
        ("completeness, the run's day on whole hours (target 50 ms)", "counting raw rows",
         lambda: completeness((day, day + DAY)), lambda: counted_raw((day, day + DAY))),
        ("completeness, one day not on whole hours (target 50 ms)", "counting raw rows",
         lambda: completeness(off_hours(1)), lambda: counted_raw(off_hours(1))),
        ("completeness, 30 days not on whole hours (target 50 ms)", "counting raw rows",
         lambda: completeness(off_hours(30)), lambda: counted_raw(off_hours(30))),
    ]
    n_ref = max(5, queries // 5)
    for name, ref_name, query, reference in cases:
        client_ms = p95(query, queries)
        now_ms, ref_ms = p95(query, queries, server_ms), p95(reference, n_ref)
        print(f"{name}: p95 {now_ms:.1f} ms in the server ({client_ms:.1f} ms at the client); {ref_name} p95"
              f" {ref_ms:.1f} ms ({n_ref} calls); ratio server/reference {now_ms / ref_ms:.2f}")
    for span in [off_hours(1) for _ in range(3)] + [off_hours(30), (day, day + DAY)]:
        got = {d["device"]: d["received"] for d in client.get("/api/v1/completeness", params={
            "start": span[0], "end": span[1]}).json()["devices"] if d["received"]}
        assert got == counted_raw(span), span
    print(f"completeness of 5 spans ({len(got):,} devices with readings): equal to counts of the raw rows")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", default="2min", help="real time of the run (scenario: 2min)")
    ap.add_argument("--substations", type=int, default=100, help="substations of 1-LV-urban6 (scenario: 100)")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--out", help="run directory (default: a new temporary one)")
    ap.add_argument("--store", help="measure the store.db of an earlier run instead of running the scenario")
    args = ap.parse_args()
    if args.store:
        path = Path(args.store)
    else:
        args.out = args.out or tempfile.mkdtemp(prefix="gridloop-real-run-")
        child = mp.get_context("spawn").Process(target=run, args=(args,))
        child.start()
        child.join()
        assert child.exitcode == 0, f"the run failed: exit code {child.exitcode}"
        path = Path(args.out) / "store.db"
    tenant = load_scenario(SCENARIO).platform.tenant
    store = SqliteStore(str(path))
    key, meters, hour0 = prepare(store, tenant)
    print(f"store {path.stat().st_size / 1e6:.0f} MB: {store.count_readings(tenant):,} readings of"
          f" {len(meters):,} meters (and bench-1h)")
    server_ms: list[float] = []
    client = TestClient(timed_app(store, server_ms))
    client.headers["Authorization"] = f"Bearer {key}"
    measure(store, client, server_ms, tenant, meters, hour0, args.queries)
    store.close()


if __name__ == "__main__":
    main()
