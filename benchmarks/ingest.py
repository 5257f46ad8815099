"""Ingest throughput end to end: MQTT envelopes -> Mosquitto -> IngestWorker -> store (readings + rollups).

Compared in the same run with the limit: raw ``executemany`` of the same rows into an SQLite table.
Usage: python benchmarks/ingest.py [--envelopes 400] [--per-envelope 500] [--publishers 2] [--profile]
FerretDB/MongoDB is measured too when GRIDLOOP_TEST_MONGODB is set (with fewer envelopes: --mongo-envelopes).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import secrets
import sqlite3
import tempfile
import time
from pathlib import Path

import orjson

from gridloop.broker import EmbeddedBroker
from gridloop.contract import BrokerAddress, TopicKind, topic
from gridloop.contract import Quantity as Q
from gridloop.mqtt_client import connect
from gridloop.platform.ingest import IngestWorker
from gridloop.platform.store import open_store
from gridloop.platform.store.base import DeviceRecord

TENANT = "bench"
T0 = 1767225600000
METERS = 1000  # meters the envelopes cycle through (--mongo-meters for the MongoDB run)
INTERVAL_MS = 10_000


def envelope_readings(k: int, per: int, meters: int = METERS) -> list[dict]:
    """Envelope k: ``per`` readings of consecutive meters, instant after instant (as a DIA forwards them)."""
    first = (k * per) % meters
    return [
        {"dev": f"m{(first + i) % meters:04d}", "ts": T0 + ((k * per + i) // meters) * INTERVAL_MS,
         "seq": (k * per + i) // meters,
         "q": {Q.ENERGY_ACTIVE_IMPORT.value: 1_000_000.0 + k * 3.5 + i,
               Q.VOLTAGE_L1.value: 230.0 + (i % 7) * 0.1, Q.CURRENT_L1.value: 2.5 + (i % 5) * 0.2,
               Q.POWER_ACTIVE_TOTAL.value: 575.0 + i % 11}}
        for i in range(per)
    ]


def _publisher(uri: str, index: int, envelopes: list[int], per: int, meters: int, start: mp.Event,
               done: mp.Queue) -> None:
    payloads = [orjson.dumps({"v": 1, "readings": envelope_readings(k, per, meters)}) for k in envelopes]
    client = connect(BrokerAddress.parse(uri), f"bench-pub-{index}-{secrets.token_hex(3)}")
    start.wait()
    infos = [client.publish(topic(TENANT, TopicKind.TELEMETRY, f"dia-{index}"), p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()
    done.put(index)


def run_ingest(broker_uri: str, store_uri: str, envelopes: int, per: int, publishers: int, workers: int,
               meters: int = METERS) -> float:
    """Readings/s from the first publish until every reading is committed."""
    store = open_store(store_uri)
    store.create_tenant(TENANT)
    store.put_devices([DeviceRecord(tenant=TENANT, id=f"m{i:04d}", type="electricity_meter") for i in range(meters)])
    ingest = [IngestWorker(store, BrokerAddress.parse(broker_uri), i) for i in range(workers)]
    for w in ingest:
        w.start()
    ctx = mp.get_context("spawn")
    start, done = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_publisher, args=(broker_uri, p, list(range(p, envelopes, publishers)), per, meters,
                                                  start, done)) for p in range(publishers)]
    for p in procs:
        p.start()
    time.sleep(3.0)  # publishers build their payloads and connect
    total = envelopes * per
    t0 = time.perf_counter()
    start.set()
    while sum(w.counters.readings_stored for w in ingest) < total:
        time.sleep(0.005)
        if time.perf_counter() - t0 > 600:
            raise RuntimeError("ingest did not finish in 600 s")
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join(30)
    for w in ingest:
        w.stop()
    assert store.count_readings(TENANT) == total
    store.close()
    return total / elapsed


def profile_hot_path(path: str, envelopes: int, per: int) -> None:
    """pyinstrument over the writer's work (decode, check, store) in this thread, batches of 200 envelopes."""
    from pyinstrument import Profiler

    from gridloop.platform.ingest import _Message

    store = open_store(f"sqlite:///{path}")
    store.put_devices([DeviceRecord(tenant=TENANT, id=f"m{i:04d}", type="electricity_meter") for i in range(METERS)])
    worker = IngestWorker(store, BrokerAddress("127.0.0.1", 1), 0)
    telemetry = topic(TENANT, TopicKind.TELEMETRY, "dia-0")
    msgs = [_Message(telemetry, orjson.dumps({"v": 1, "readings": envelope_readings(k, per)}),
                     k, 1) for k in range(envelopes)]
    profiler = Profiler(async_mode="disabled")
    profiler.start()
    t0 = time.perf_counter()
    for off in range(0, envelopes, 200):
        worker._commit(msgs[off:off + 200])
    elapsed = time.perf_counter() - t0
    profiler.stop()
    print(f"hot path alone (no MQTT), 200 envelopes per transaction: {envelopes * per / elapsed:,.0f} readings/s")
    print(profiler.output_text(unicode=False, color=False))
    store.close()


def run_raw_sqlite(path: str, envelopes: int, per: int, batch: int) -> float:
    """The limit: the same rows with executemany, one transaction per ``batch`` rows, as the store's pragmas."""
    rows = [(TENANT, r["dev"], r["ts"], r["seq"], orjson.dumps(r["q"]))
            for k in range(envelopes) for r in envelope_readings(k, per)]
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE readings (tenant TEXT NOT NULL, dev TEXT NOT NULL, ts INTEGER NOT NULL, seq INTEGER,"
               " q BLOB NOT NULL, PRIMARY KEY (tenant, dev, ts)) WITHOUT ROWID")
    t0 = time.perf_counter()
    for off in range(0, len(rows), batch):
        db.execute("BEGIN")
        db.executemany("INSERT OR IGNORE INTO readings VALUES (?,?,?,?,?)", rows[off:off + batch])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    return len(rows) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--envelopes", type=int, default=400)
    ap.add_argument("--per-envelope", type=int, default=500)
    ap.add_argument("--publishers", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="ingest workers (shared subscription)")
    ap.add_argument("--raw-batch", type=int, default=5000, help="rows per transaction of the raw baseline")
    ap.add_argument("--mongo-envelopes", type=int, default=4)
    ap.add_argument("--mongo-meters", type=int, default=50)
    ap.add_argument("--profile", action="store_true", help="only profile the ingest hot path on SQLite (pyinstrument)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gridloop-bench-"))
    if args.profile:
        profile_hot_path(str(work / "profile.db"), args.envelopes, args.per_envelope)
        return
    n = args.envelopes * args.per_envelope
    print(f"{n} readings ({args.envelopes} envelopes x {args.per_envelope}, 4 quantities each, {METERS} meters),"
          f" {args.publishers} publisher processes, {args.workers} ingest worker(s), {os.cpu_count()} CPUs")
    raw = run_raw_sqlite(str(work / "raw.db"), args.envelopes, args.per_envelope, args.raw_batch)
    print(f"raw SQLite executemany ({args.raw_batch} rows/transaction): {raw:,.0f} readings/s")
    with EmbeddedBroker() as broker:
        sq = run_ingest(broker.uri, f"sqlite:///{work / 'store.db'}", args.envelopes, args.per_envelope,
                        args.publishers, args.workers)
        print(f"MQTT -> ingest -> SqliteStore (readings + rollups): {sq:,.0f} readings/s"
              f" = {sq / raw:.2f} of raw")
        mongo = os.environ.get("GRIDLOOP_TEST_MONGODB")
        if not mongo:
            print("MongoStore: skipped (set GRIDLOOP_TEST_MONGODB=mongodb://host:port/db to measure it)")
        else:
            import pymongo

            name = "gl_bench_" + secrets.token_hex(4)
            uri = mongo.partition("?")[0].rsplit("/", 1)[0] + "/" + name
            mg = run_ingest(broker.uri, uri, args.mongo_envelopes, args.per_envelope, args.publishers,
                            args.workers, args.mongo_meters)
            print(f"MQTT -> ingest -> MongoStore on {mongo.split('/')[2]} ({args.mongo_envelopes * args.per_envelope}"
                  f" readings of {args.mongo_meters} meters): {mg:,.0f} readings/s = {mg / raw:.4f} of raw SQLite")
            with pymongo.MongoClient(uri) as client:
                client.drop_database(name)


if __name__ == "__main__":
    main()
