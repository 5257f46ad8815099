"""The FerretDB write lock (GenerationLock) against the real server: one holder at a time, a crashed holder's lock
taken over after its TTL, and nothing a late or stale process does can free or share the new holder's lock.

The lock it replaced took a crashed holder's lock over with delete_one({_id, holder: the dead one}); FerretDB v1
checks that filter apart from the delete, so a take-over could delete a lock just taken by another process, and
two writers then lost one another's readings (benchmarks/ferretdb_lock.py measures both)."""

from __future__ import annotations

import time
import uuid

import pymongo
import pytest

from gridloop.platform.store.mongo.writer_lock import GenerationLock
from tests.platform_tests.conftest import unique_mongo_uri

TTL_MS = 300


@pytest.fixture
def locks(mongo_uri):
    uri, name = unique_mongo_uri(mongo_uri)
    with pymongo.MongoClient(uri) as client:
        yield client.get_default_database().locks
        client.drop_database(name)


def _lock(locks) -> GenerationLock:
    return GenerationLock(locks, uuid.uuid4().hex, TTL_MS)


def test_one_holder_and_a_crashed_holder_is_taken_over_only_after_its_ttl(locks):
    a, b, c = _lock(locks), _lock(locks), _lock(locks)
    assert a.try_take()
    assert not b.try_take() and not c.try_take()  # held
    a.release()
    assert b.try_take()  # released: the next one takes it at once
    taken = time.monotonic()
    while not c.try_take():  # b 'crashes' holding it (never releases): c waits out the TTL
        time.sleep(0.01)
    assert time.monotonic() - taken >= TTL_MS / 1000 * 0.9
    b.renew()  # the late, crashed-and-back holder renews and releases its own generation...
    b.release()
    assert not a.try_take()  # ...which frees nothing: c still holds the lock
    c.release()
    assert a.try_take()


def test_a_taker_that_read_a_stale_generation_does_not_get_the_lock(locks):
    a, b, c = _lock(locks), _lock(locks), _lock(locks)
    assert a.try_take()
    a.release()
    stale = locks.find_one({"name": "writer"}, sort=[("gen", -1)])  # what a slow process read: free, generation 1
    assert b.try_take()  # meanwhile b takes generation 2 and releases it, c takes generation 3
    b.release()
    assert c.try_take()
    locks.delete_one({"_id": "writer:2"})  # generation 2 cleaned up as an old one: its _id is free again
    late = _lock(locks)
    reads = iter([stale])
    newest = late._newest
    late._newest = lambda: next(reads, None) or newest()  # the slow process's first read is the stale one
    assert not late.try_take()  # it inserted generation 2, found 3 above it, and backed off
    assert not _lock(locks).try_take()  # c holds the lock still
    c.release()
    assert a.try_take()
