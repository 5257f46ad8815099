"""A store written by the previous layout (global device ids) is refused with the command to run, and
`gridloop platform migrate` brings it to the current layout with nothing lost: never read wrong."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pymongo
import pytest

from gridloop.platform.store import open_store
from gridloop.platform.store.base import DeviceRecord
from gridloop.platform.store.layout import LAYOUT, StoreLayoutError
from tests.platform_tests.conftest import unique_mongo_uri

# the devices table as layout 1 wrote it: one global id per device
LAYOUT1_DEVICES = """CREATE TABLE devices (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, type TEXT NOT NULL, phases INTEGER NOT NULL,
    gateway TEXT, asset TEXT, status TEXT NOT NULL DEFAULT 'unknown', meta TEXT NOT NULL DEFAULT '{}');
CREATE INDEX devices_tenant ON devices (tenant, id);
CREATE TABLE readings (
    tenant TEXT NOT NULL, dev TEXT NOT NULL, ts INTEGER NOT NULL, seq INTEGER, q BLOB NOT NULL,
    PRIMARY KEY (tenant, dev, ts)) WITHOUT ROWID;
"""


def _migrate(uri: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gridloop", "platform", "migrate", "--store", uri],
                          capture_output=True, text=True, timeout=60)


def _serve_refuses(uri: str) -> str:
    """`platform serve` on the old store: exits 2 with the message (it never starts reading it)."""
    proc = subprocess.run([sys.executable, "-m", "gridloop", "platform", "serve", "--store", uri, "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    return proc.stderr


def _check_migrated(uri: str) -> None:
    store = open_store(uri)
    try:
        assert [(d.id, d.type, d.status, d.meta) for d in store.list_devices("alpha")] == [
            ("m1", "electricity_meter", "online", {"interval_s": 60}), ("m2", "water_meter", "unknown", {})]
        assert [d.id for d in store.list_devices("beta")] == ["b1"]
        assert store.is_registered("alpha", "m1") and not store.is_registered("beta", "m1")
        store.put_devices([DeviceRecord(tenant="beta", id="m1", type="gas_meter")])  # now possible
        assert store.get_device("alpha", "m1").type == "electricity_meter"
        assert store.get_device("beta", "m1").type == "gas_meter"
    finally:
        store.close()


def test_sqlite_store_of_the_previous_layout_is_refused_then_migrated(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(LAYOUT1_DEVICES)
        db.executemany("INSERT INTO devices VALUES (?,?,?,?,?,?,?,?)", [
            ("m1", "alpha", "electricity_meter", 3, None, None, "online", '{"interval_s":60}'),
            ("m2", "alpha", "water_meter", 1, None, None, "unknown", "{}"),
            ("b1", "beta", "switch", 1, None, None, "unknown", "{}")])
        db.execute("INSERT INTO readings VALUES ('alpha','m1',1767225600000,1,'{\"electricity.voltage.l1\":230.5}')")
    uri = f"sqlite:///{path}"
    with pytest.raises(StoreLayoutError, match=f"layout 1, this gridloop reads layout {LAYOUT}"):
        open_store(uri)
    assert f"gridloop platform migrate --store {uri}" in _serve_refuses(uri)
    done = _migrate(uri)
    assert done.returncode == 0, done.stderr
    assert f"is at layout {LAYOUT}" in done.stdout
    _check_migrated(uri)
    store = open_store(uri)
    try:  # the reading is there, its values unpacked as they were written
        [r] = store.query_readings("alpha", "m1", None, None, 10)
        assert (r.ts, r.seq, r.q) == (1767225600000, 1, {"electricity.voltage.l1": 230.5})
        assert store.count_readings("alpha") == 1  # the counters were built from the migrated readings
        assert store.readings_per_device("alpha", 1767225600000, 1767225600001) == {"m1": 1}
        # layout 1 had folded it into the rollups at ingest: the migration's mark says so (it is not folded again)
        assert store.materialize_rollups("alpha", 1767225600000 + 3_600_000) == 0
    finally:
        store.close()
    assert _migrate(uri).returncode == 0  # migrating a current store is a no-op


def test_a_store_of_a_newer_layout_is_refused(tmp_path):
    path = tmp_path / "new.db"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE store_info SET value=? WHERE key='layout'", (str(LAYOUT + 1),))
    with pytest.raises(StoreLayoutError, match="newer gridloop"):
        open_store(f"sqlite:///{path}", migrate=True)


def test_mongodb_store_of_the_previous_layout_is_refused_then_migrated(mongo_uri):
    uri, name = unique_mongo_uri(mongo_uri)
    with pymongo.MongoClient(uri) as client:
        client[name].devices.insert_many([
            {"_id": "m1", "tenant": "alpha", "type": "electricity_meter", "phases": 3, "status": "online",
             "meta": '{"interval_s":60}'},
            {"_id": "m2", "tenant": "alpha", "type": "water_meter", "phases": 1, "meta": "{}"},
            {"_id": "b1", "tenant": "beta", "type": "switch", "phases": 1, "meta": "{}"}])
    try:
        with pytest.raises(StoreLayoutError, match="gridloop platform migrate"):
            open_store(uri)
        done = _migrate(uri)
        assert done.returncode == 0, done.stderr
        _check_migrated(uri)
    finally:
        with pymongo.MongoClient(uri) as client:
            client.drop_database(name)


def _layout2_mongo(db) -> None:
    """A MongoDB store as layout 2 wrote it: readings in hourly documents, folded into bucket documents."""
    db.store_info.insert_one({"_id": "layout", "value": 2})
    db.devices.insert_one({"_id": "alpha|m1", "tenant": "alpha", "id": "m1", "type": "electricity_meter",
                           "phases": 3, "status": "online", "meta": "{}"})
    t0, hour = 1767225600000, 3_600_000
    samples = {t0 + 1000: 230.0, t0 + 61_000: 231.0, t0 + hour + 5: 229.0}
    for h in (t0, t0 + hour):
        mine = {ts: v for ts, v in samples.items() if h <= ts < h + hour}
        db.readings.insert_one({"_id": f"alpha|m1|{h}", "tenant": "alpha", "dev": "m1", "h": h, "k": list(mine),
                                "n": len(mine), "s": {str(ts): {"seq": i, "q": [{"k": "electricity.voltage.l1",
                                                                                  "v": v}]}
                                                      for i, (ts, v) in enumerate(mine.items())}})
    db.rollups.insert_one({"_id": f"alpha|m1|1d|{t0}", "tenant": "alpha", "dev": "m1", "res": "1d", "b": t0,
                           "s": {"electricity%2Evoltage%2El1": {"n": 3, "sum": 690.0, "min": 229.0, "max": 231.0,
                                                                "f": {"t": t0 + 1000, "v": 230.0},
                                                                "l": {"t": t0 + hour + 5, "v": 229.0}}}})


def test_mongodb_store_of_layout_2_is_refused_then_its_readings_moved_into_chunks(mongo_uri):
    """Layout 2 (hourly reading documents) -> 3 (chunks): readings, counts and rollups as before, nothing
    folded twice, and a reading stored before is still known (not stored again)."""
    from gridloop.platform.envelope import Reading

    uri, name = unique_mongo_uri(mongo_uri)
    with pymongo.MongoClient(uri) as client:
        _layout2_mongo(client[name])
    t0, hour, q = 1767225600000, 3_600_000, "electricity.voltage.l1"
    try:
        with pytest.raises(StoreLayoutError, match="layout 2, this gridloop reads layout 3"):
            open_store(uri)
        done = _migrate(uri)
        assert done.returncode == 0, done.stderr
        assert "is at layout 3" in done.stdout
        store = open_store(uri)
        try:
            got = store.query_readings("alpha", "m1", None, None, 10)
            assert [(r.ts - t0, r.seq, r.q[q]) for r in got] == [(1000, 0, 230.0), (61_000, 1, 231.0),
                                                                   (hour + 5, 0, 229.0)]
            assert store.count_readings("alpha") == 3
            assert store.readings_per_device("alpha", t0, t0 + hour) == {"m1": 2}
            day = store.query_rollups("alpha", ["m1"], q, "1d", t0, t0 + 86_400_000)
            assert [(b.n, b.sum) for b in day] == [(3, 690.0)]  # layout 2's buckets, not folded again
            assert store.materialize_rollups("alpha", t0 + 10 * hour) == 0
            assert store.insert_readings("alpha", [Reading("m1", t0 + 1000, 0, {q: 230.0})]) == 0
            assert store.get_device("alpha", "m1").status == "online"
        finally:
            store.close()
        with pymongo.MongoClient(uri) as client:
            assert "readings" not in client[name].list_collection_names()
    finally:
        with pymongo.MongoClient(uri) as client:
            client.drop_database(name)
