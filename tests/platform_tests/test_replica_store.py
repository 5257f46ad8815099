"""The store-level rules platform replicas rely on (forward-only command steps, compare-and-set claims, one lease
holder, ownership checked in the store), with two store handles on one store as two replicas, SQLite and MongoDB.
The replicas as processes: test_replicas.py.
"""

from __future__ import annotations

import threading
import time

import pymongo
import pytest

from gridloop.platform.store import open_store
from gridloop.platform.store.base import CommandRecord, DeviceRecord
from tests.platform_tests.conftest import unique_mongo_uri

T0 = 1_767_225_600_000
METERS, INSTANTS = 10, 60  # 600 readings in 60 envelopes of 10, published over about 1.2 s
LATER = 50  # instants published while a replica stops gracefully
QUANTITY = "electricity.energy.active.import"


@pytest.fixture
def two_handles(store_uri):
    """Two store handles on one store: what two replicas have."""
    a, b = open_store(store_uri), open_store(store_uri)
    yield a, b
    a.close()
    b.close()


def _command(cid: str, ts: int = T0) -> CommandRecord:
    return CommandRecord(tenant="t", id=cid, device="sw1", name="switch.open", args={}, ts=ts, expires=None,
                         updated=ts, history=[["pending", ts]])


def test_command_status_only_moves_forward(two_handles):
    a, b = two_handles
    a.put_command(_command("c1"))
    assert a.update_command("t", "c1", "sent", "", T0 + 1)
    assert b.update_command("t", "c1", "accepted", "", T0 + 2)
    assert not a.update_command("t", "c1", "sent", "", T0 + 3)  # a late 'sent' after the device answered
    assert b.update_command("t", "c1", "executed", "done", T0 + 4)
    for late in ("accepted", "sent", "failed", "expired", "executed"):  # replicas, redelivery, the expirer
        assert not a.update_command("t", "c1", late, "late", T0 + 5), late
    got = b.get_command("t", "c1")
    assert (got.status, got.detail, got.updated) == ("executed", "done", T0 + 4)
    assert [s for s, _ in got.history] == ["pending", "sent", "accepted", "executed"]
    a.put_command(_command("c2"))
    assert a.update_command("t", "c2", "accepted", "", T0 + 1)
    assert not b.update_command("t", "c2", "expired", "", T0 + 2)  # accepted: its outcome is the device's
    assert not a.update_command("t", "nope", "sent", "", T0)
    assert [c.id for c in b.open_commands()] == ["c2"]


def test_one_of_many_replicas_claims_a_command(two_handles):
    a, b = two_handles
    a.put_command(_command("c1"))
    wins: list[str] = []

    def claim(who: str, handle) -> None:
        for _ in range(5):
            if handle.update_command("t", "c1", "sent", "", T0, expect_updated=T0):  # same instant for all
                wins.append(who)

    threads = [threading.Thread(target=claim, args=(f"{n}{i}", h)) for i in range(4) for n, h in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1  # pending -> sent once, though 8 threads on 2 handles tried 5 times each
    got = b.get_command("t", "c1")
    assert got.status == "sent" and got.updated > T0  # updated moved on: a claim on the old value fails
    assert b.update_command("t", "c1", "sent", "", T0, expect_updated=got.updated)  # a re-send is a new claim
    assert not a.update_command("t", "c1", "sent", "", T0, expect_updated=got.updated)
    assert [s for s, _ in a.get_command("t", "c1").history] == ["pending", "sent", "sent"]


def test_the_lease_has_one_holder_at_a_time(two_handles):
    a, b = two_handles
    assert a.acquire_lease("commands", "a", 10_000, now=T0)
    assert not b.acquire_lease("commands", "b", 10_000, now=T0 + 1)
    assert a.acquire_lease("commands", "a", 10_000, now=T0 + 5_000)  # renewed until T0 + 15 s
    assert not b.acquire_lease("commands", "b", 10_000, now=T0 + 14_000)
    assert b.acquire_lease("commands", "b", 10_000, now=T0 + 15_001)  # a stopped renewing: b takes over
    assert not a.acquire_lease("commands", "a", 10_000, now=T0 + 15_002)
    b.release_lease("commands", "a")  # only the holder can release
    assert not a.acquire_lease("commands", "a", 10_000, now=T0 + 15_003)
    b.release_lease("commands", "b")
    assert a.acquire_lease("commands", "a", 10_000, now=T0 + 15_004)


def test_a_registry_change_through_another_replica_shows_within_the_cache_age(two_handles):
    a, b = two_handles
    a.put_devices([DeviceRecord(tenant="t1", id="m1", type="electricity_meter")])
    assert b.is_registered("t1", "m1") and not b.is_registered("t2", "m1")  # b caches both answers now
    assert a.delete_device("t1", "m1")
    a.put_devices([DeviceRecord(tenant="t2", id="m1", type="electricity_meter")])  # t2's own m1
    b._registered.max_age_s = 0.2  # the cache's bound (OWNER_CACHE_S), shortened so the test need not wait 5 s
    time.sleep(0.25)
    assert not b.is_registered("t1", "m1") and b.is_registered("t2", "m1")
    assert a.get_device("t1", "m1") is None and b.get_device("t2", "m1").type == "electricity_meter"


def test_mongodb_claims_store_and_deduplicate_like_the_read_back(mongo_uri):
    """On MongoDB (not FerretDB, which the tests run) each reading is claimed by a key document, so that replicas
    writing at once never store one twice: forced here, the claims store and deduplicate exactly as the read-back
    that FerretDB's serialised writers use, and every reading has one claim naming the chunk that holds it."""
    from gridloop.platform.envelope import Reading

    uri, name = unique_mongo_uri(mongo_uri)
    store = open_store(uri)
    try:
        store._claims = True  # the MongoDB path (the write lock stays: FerretDB needs it)
        store.put_devices([DeviceRecord(tenant="t", id=f"m{i}", type="electricity_meter") for i in range(2)])
        batch = [Reading(f"m{i}", T0 + 1000 * k, k, {QUANTITY: float(k)}) for k in range(90) for i in range(2)]
        assert store.insert_readings("t", batch[:100]) == 100
        assert store.insert_readings("t", batch) == 80  # redelivered and new together
        assert store.count_readings("t") == 180
        assert [r.seq for r in store.query_readings("t", "m1", None, None, 1000)] == list(range(90))
        buckets = store.query_rollups("t", ["m0", "m1"], QUANTITY, "1m", T0, T0 + 120_000)
        assert [(b.dev, b.start, b.n, b.sum) for b in buckets] == [
            (d, T0 + 60_000 * j, 60 if j == 0 else 30, float(sum(range(60 * j, min(60 * j + 60, 90)))))
            for d in ("m0", "m1") for j in range(2)]
        claims = {d["_id"]: d["c"] for d in store.db.reading_keys.find()}
        assert len(claims) == 180 and set(claims.values()) == {d["_id"] for d in store.db.chunks.find({}, {"_id": 1})}
    finally:
        store.close()
        with pymongo.MongoClient(uri) as client:
            client.drop_database(name)


def test_instance_names(monkeypatch):
    from gridloop.cli import _parser
    from gridloop.platform.service import check_instance

    monkeypatch.delenv("GRIDLOOP_INSTANCE", raising=False)
    assert _parser().parse_args(["platform", "serve"]).instance is None  # then <hostname>-<pid>
    monkeypatch.setenv("GRIDLOOP_INSTANCE", "platform-1")  # a StatefulSet pod's name
    assert _parser().parse_args(["platform", "serve"]).instance == "platform-1"
    assert _parser().parse_args(["platform", "serve", "--instance", "b"]).instance == "b"
    for bad in ("", "-a", "a/b", "a+", "a#", "x" * 64):  # they would break MQTT client ids or topic filters
        with pytest.raises(ValueError):
            check_instance(bad)
