"""The MongoDB store's chunks under redelivery and crashes, on FerretDB: each reading stored once whatever the
batch composition, claims of a writer that died taken over, a fold interrupted half-way not folded twice. The
claim path (one key document per reading, for MongoDB's unserialised writers) is forced on here too."""

from __future__ import annotations

import time

import pymongo
import pytest

from gridloop.platform.envelope import Reading
from gridloop.platform.ingest import is_store_outage
from gridloop.platform.store.mongo import MongoStore
from gridloop.platform.store.mongo.chunks import ChunkPlan, reading_key
from gridloop.platform.store.mongo.readings import ORPHAN_MS, ClaimConflict
from gridloop.platform.store.mongo.rollups import _chunk_rows, _fold_row
from tests.platform_tests.conftest import unique_mongo_uri

T0 = 1767225600000
Q = "electricity.voltage.l1"


@pytest.fixture(params=["read-back", "claims"])
def mongo_store(request, mongo_uri):
    uri, name = unique_mongo_uri(mongo_uri)
    store = MongoStore(uri)
    store._claims = request.param == "claims"
    yield store
    store.close()
    with pymongo.MongoClient(uri) as client:
        client.drop_database(name)


def _readings(devs: str, ks: range) -> list[Reading]:
    return [Reading(d, T0 + 1000 * k, k, {Q: 230.0 + k}) for d in devs for k in ks]


def _stored(store: MongoStore) -> list[tuple[str, int]]:
    return sorted((d, r.ts) for d in "abc" for r in store.query_readings("t", d, None, None, 10_000))


def test_a_reading_is_stored_once_whatever_batch_brings_it_again(mongo_store):
    s = mongo_store
    assert s.insert_readings("t", _readings("ab", range(0, 50))) == 100
    assert s.insert_readings("t", _readings("ab", range(0, 50))) == 0  # the same batch again
    assert s.insert_readings("t", _readings("abc", range(40, 60))) == 10 + 10 + 20  # recomposed: only the new
    assert s.insert_readings("t", _readings("b", range(45, 46)) + _readings("c", range(0, 1))) == 1
    assert s.count_readings("t") == 141
    assert len(set(_stored(s))) == len(_stored(s)) == 141
    assert s.readings_per_device("t", None, None) == {"a": 60, "b": 60, "c": 21}


def test_chunks_of_a_batch_written_before_a_crash_count_as_stored(mongo_store):
    s = mongo_store
    batch = _readings("ab", range(0, 30))
    first = ChunkPlan("t", (Q,), batch[:10])  # a writer died after its first chunk (and, with claims, its claims)
    s.db.chunks.insert_one(first.document())
    if s._claims:
        s.db.reading_keys.insert_many([{"_id": k, "c": first.id, "at": 0} for k in first.keys])
    assert s.insert_readings("t", batch) == 50
    assert s.count_readings("t") == 60 and len(set(_stored(s))) == 60


def test_claims_of_a_writer_that_died_before_its_chunk_are_taken_over(mongo_store):
    s = mongo_store
    s._claims = True
    batch = _readings("a", range(0, 20))
    s.db.reading_keys.insert_many([{"_id": reading_key("t", r.dev, r.ts), "c": "t|0|never-written", "at": 0}
                                   for r in batch[5:15]])
    assert s.insert_readings("t", batch[:12]) == 12  # claimed by a chunk that does not exist: stored here
    assert s.insert_readings("t", batch) == 8
    assert [ts - T0 for _, ts in _stored(s)] == [1000 * k for k in range(20)]
    keys = {d["_id"]: d["c"] for d in s.db.reading_keys.find()}
    chunks = {d["_id"] for d in s.db.chunks.find({}, {"_id": 1})}
    assert len(keys) == 20 and set(keys.values()) <= chunks  # every claim names a chunk that holds it


def test_a_fold_interrupted_by_a_crash_is_finished_without_folding_twice(mongo_store):
    s = mongo_store
    s.insert_readings("t", _readings("a", range(0, 120)))
    s.insert_readings("t", _readings("a", range(120, 180)))
    docs = s._fold_step_chunks("t", {"t1": {"$lt": T0 + 10**9}})  # marked with the fold's id, then...
    buckets: dict = {}
    for row in (row for doc in docs for row in _chunk_rows("t", doc)):
        _fold_row(buckets, row)
    s._insert_parts("t", docs[0]["rolled"], buckets)  # ...it died after inserting its parts, before the mark
    assert s.materialize_rollups("t", T0 + 10**9) == 180
    assert s.materialize_rollups("t", T0 + 10**9) == 0
    got = [(b.start - T0, b.n) for b in s.query_rollups("t", ["a"], Q, "1m", T0, T0 + 3_600_000)]
    assert got == [(0, 60), (60_000, 60), (120_000, 60)]
    day = s.query_rollups("t", ["a"], Q, "1d", T0, T0 + 1)
    assert [(b.n, b.sum) for b in day] == [(180, sum(230.0 + k for k in range(180)))]


def test_unserialised_writers_leave_a_young_claim_alone_and_take_an_old_one_over(mongo_store):
    """MongoDB's writers do not take turns: a claim without its chunk may be a writer still at work, so it is
    taken over only once ORPHAN_MS old; until then the batch fails unacknowledged (and comes again)."""
    s = mongo_store
    s._claims, s._serialise = True, False
    batch = _readings("a", range(0, 10))
    key = {"_id": reading_key("t", "a", T0 + 3000), "c": "t|0|in-flight", "at": time.time_ns() // 1_000_000}
    s.db.reading_keys.insert_one(key)
    with pytest.raises(ClaimConflict):
        s.insert_readings("t", batch)
    assert s.count_readings("t") == 0
    s.db.reading_keys.update_one({"_id": key["_id"]}, {"$set": {"at": key["at"] - ORPHAN_MS - 1}})
    assert s.insert_readings("t", batch) == 10
    assert s.insert_readings("t", batch) == 0 and s.count_readings("t") == 10


def test_a_claim_conflict_is_retried_by_ingest_not_quarantined():
    """A batch failing on another writer's claims must come again: ingest retries an outage, but quarantines (and
    acknowledges) what it takes for refused data, which would drop the batch's other readings."""
    assert is_store_outage(ClaimConflict("another writer is storing some of these readings"))
