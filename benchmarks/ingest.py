"""Ingest throughput end to end: MQTT envelopes -> Mosquitto -> IngestWorker -> store (readings + rollups).

Compared in the same run with the limit: raw ``executemany`` of the same rows into an SQLite table.
Usage: python benchmarks/ingest.py [--envelopes 1200] [--per-envelope 500] [--meters 10000] [--interval-ms 1000]
       [--publishers 2] [--workers 1] [--profile]
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
METERS = 10_000  # meters the envelopes cycle through (--meters; --mongo-meters for the MongoDB run)
INTERVAL_MS = 1_000  # each meter's reading interval (--interval-ms): the pilot-scale case, 10,000 meters at 1 Hz


# what a three-phase home meter sends each interval (the DIA's residential envelope)
HOME_QUANTITIES = (Q.ENERGY_ACTIVE_IMPORT, Q.VOLTAGE_L1, Q.VOLTAGE_L2, Q.VOLTAGE_L3, Q.CURRENT_L1, Q.CURRENT_L2,
                   Q.CURRENT_L3, Q.POWER_ACTIVE_TOTAL, Q.POWER_REACTIVE_TOTAL)


def envelope_readings(k: int, per: int, meters: int = METERS, interval_ms: int = INTERVAL_MS) -> list[dict]:
    """Envelope k: ``per`` readings of consecutive meters, instant after instant (as a DIA forwards them)."""
    first = (k * per) % meters
    out = []
    for i in range(per):
        values = (1_000_000.0 + k * 3.5 + i, 230.0 + (i % 7) * 0.1, 229.4 + (i % 5) * 0.1, 231.1 - (i % 3) * 0.1,
                  2.5 + (i % 5) * 0.2, 1.25 + (i % 3) * 0.1, 0.75 + (i % 4) * 0.05, 575.0 + i % 11, 41.5 + i % 3)
        out.append({"dev": f"m{(first + i) % meters:05d}", "ts": T0 + ((k * per + i) // meters) * interval_ms,
                    "seq": (k * per + i) // meters,
                    "q": {q.value: v for q, v in zip(HOME_QUANTITIES, values, strict=True)}})
    return out


def _publisher(uri: str, index: int, envelopes: list[int], per: int, meters: int, interval_ms: int,
               start: mp.Event, done: mp.Queue) -> None:
    payloads = [orjson.dumps({"v": 1, "readings": envelope_readings(k, per, meters, interval_ms)}) for k in envelopes]
    client = connect(BrokerAddress.parse(uri), f"bench-pub-{index}-{secrets.token_hex(3)}")
    start.wait()
    infos = [client.publish(topic(TENANT, TopicKind.TELEMETRY, f"dia-{index}"), p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()
    done.put(index)


def run_ingest(broker_uri: str, store_uri: str, envelopes: int, per: int, publishers: int, workers: int,
               meters: int = METERS, interval_ms: int = INTERVAL_MS) -> float:
    """Readings/s from the first publish until every reading is committed."""
    store = open_store(store_uri)
    store.create_tenant(TENANT)
    store.put_devices([DeviceRecord(tenant=TENANT, id=f"m{i:05d}", type="electricity_meter") for i in range(meters)])
    ingest = [IngestWorker(store, BrokerAddress.parse(broker_uri), i) for i in range(workers)]
    for w in ingest:
        w.start()
    ctx = mp.get_context("spawn")
    start, done = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_publisher, args=(broker_uri, p, list(range(p, envelopes, publishers)), per, meters,
                                                  interval_ms, start, done)) for p in range(publishers)]
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
    t1 = time.perf_counter()
    for w in ingest:
        w.stop()  # and fold what is due into the rollups
    print(f"  stop, with the last fold into the rollups: {time.perf_counter() - t1:.1f} s")
    assert store.count_readings(TENANT) == total
    t2 = time.perf_counter()  # what the data clock has not reached yet (the last 2 min): fold it all to measure it
    folded = store.materialize_rollups(TENANT, T0 + (envelopes * per // meters + 1) * interval_ms)
    print(f"  then folding the remaining {folded:,} readings into the rollups: {time.perf_counter() - t2:.1f} s")
    store.close()
    return total / elapsed


def store_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def profile_hot_path(path: str, envelopes: int, per: int) -> None:
    """pyinstrument over the writer's work (decode, check, store) in this thread, batches of 200 envelopes."""
    from pyinstrument import Profiler

    from gridloop.platform.ingest import _Message

    store = open_store(f"sqlite:///{path}")
    store.put_devices([DeviceRecord(tenant=TENANT, id=f"m{i:05d}", type="electricity_meter") for i in range(METERS)])
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


def run_raw_sqlite(path: str, envelopes: int, per: int, batch: int, meters: int, interval_ms: int) -> float:
    """The limit: the same rows as the store writes them (values packed by quantity set), prebuilt, with
    executemany, one transaction per ``batch`` rows, the store's pragmas."""
    from gridloop.platform.envelope import Reading
    from gridloop.platform.store.sqlite.values import ShapeCodec

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE shapes (id INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE)")
    db.execute("CREATE TABLE readings (tenant TEXT NOT NULL, dev TEXT NOT NULL, ts INTEGER NOT NULL, seq INTEGER,"
               " shape INTEGER NOT NULL, v BLOB NOT NULL, PRIMARY KEY (tenant, dev, ts)) WITHOUT ROWID")
    readings = [Reading(r["dev"], r["ts"], r["seq"], r["q"]) for k in range(envelopes)
                for r in envelope_readings(k, per, meters, interval_ms)]
    rows = ShapeCodec().rows(db, TENANT, readings)
    t0 = time.perf_counter()
    for off in range(0, len(rows), batch):
        db.execute("BEGIN")
        db.executemany("INSERT OR IGNORE INTO readings VALUES (?,?,?,?,?,?)", rows[off:off + batch])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    return len(rows) / elapsed


def run_raw_mongo(uri: str, envelopes: int, per: int, meters: int, interval_ms: int) -> float:
    """The limit on MongoDB: the documents the store writes for these readings (chunks.py; and a key document per
    reading on MongoDB, readings.py), prebuilt, with insert_many into a scratch database on the same server."""
    import pymongo

    from gridloop.platform.envelope import Reading
    from gridloop.platform.store.mongo.chunks import plan_chunks

    readings = [Reading(r["dev"], r["ts"], r["seq"], r["q"]) for k in range(envelopes)
                for r in envelope_readings(k, per, meters, interval_ms)]
    plans = plan_chunks(TENANT, readings)
    chunks = [p.document() for p in plans]
    base, _, _ = uri.rpartition("/")
    name = "gl_raw_" + secrets.token_hex(4)
    with pymongo.MongoClient(f"{base}/{name}") as client:
        db = client[name]
        # a key document per reading too where the store writes them (MongoDB; FerretDB's writers take turns)
        claims = "ferretdbVersion" not in client.admin.command("buildInfo")
        keys = [{"_id": k, "c": p.id, "at": 0} for p in plans for k in p.keys] if claims else []
        t0 = time.perf_counter()
        if keys:
            db.reading_keys.insert_many(keys, ordered=False)
        db.chunks.insert_many(chunks, ordered=False)
        elapsed = time.perf_counter() - t0
        client.drop_database(name)
    return len(readings) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--envelopes", type=int, default=1200, help="envelopes in all (600,000 readings: a minute)")
    ap.add_argument("--per-envelope", type=int, default=500)
    ap.add_argument("--meters", type=int, default=METERS)
    ap.add_argument("--interval-ms", type=int, default=INTERVAL_MS)
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
    print(f"{n} readings ({args.envelopes} envelopes x {args.per_envelope}, {len(HOME_QUANTITIES)} quantities each,"
          f" {args.meters} meters every {args.interval_ms} ms), {args.publishers} publisher processes,"
          f" {args.workers} ingest worker(s), {os.cpu_count()} CPUs")
    raw = run_raw_sqlite(str(work / "raw.db"), args.envelopes, args.per_envelope, args.raw_batch, args.meters,
                         args.interval_ms)
    print(f"raw SQLite executemany of the same rows ({args.raw_batch} rows/transaction): {raw:,.0f} readings/s")
    with EmbeddedBroker() as broker:
        path = work / "store.db"
        sq = run_ingest(broker.uri, f"sqlite:///{path}", args.envelopes, args.per_envelope,
                        args.publishers, args.workers, args.meters, args.interval_ms)
        print(f"MQTT -> ingest -> SqliteStore (readings + rollups): {sq:,.0f} readings/s = {sq / raw:.2f} of raw;"
              f" {store_bytes(path) / n:.0f} bytes per reading on disk, rollups included")
        mongo = os.environ.get("GRIDLOOP_TEST_MONGODB")
        if not mongo:
            print("MongoStore: skipped (set GRIDLOOP_TEST_MONGODB=mongodb://host:port/db to measure it)")
        else:
            import pymongo

            name = "gl_bench_" + secrets.token_hex(4)
            uri = mongo.partition("?")[0].rsplit("/", 1)[0] + "/" + name
            raw_mongo = run_raw_mongo(uri, args.mongo_envelopes, args.per_envelope, args.mongo_meters,
                                      args.interval_ms)
            print(f"raw insert_many on {mongo.split('/')[2]} of the documents the store writes (its chunks):"
                  f" {raw_mongo:,.0f} readings/s")
            mg = run_ingest(broker.uri, uri, args.mongo_envelopes, args.per_envelope, args.publishers,
                            args.workers, args.mongo_meters, args.interval_ms)
            print(f"MQTT -> ingest -> MongoStore on {mongo.split('/')[2]} ({args.mongo_envelopes * args.per_envelope}"
                  f" readings of {args.mongo_meters} meters): {mg:,.0f} readings/s = {mg / raw_mongo:.2f} of raw"
                  f" insert_many on the same server, {mg / raw:.4f} of raw SQLite")
            with pymongo.MongoClient(uri) as client:
                client.drop_database(name)


if __name__ == "__main__":
    main()
