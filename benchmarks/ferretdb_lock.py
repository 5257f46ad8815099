"""Mutual exclusion of the FerretDB write lock under crash and take-over: the old lock against GenerationLock.

Workers (each its own client and token) take the lock, do a read-modify-write increment of one counter document
(as a readings bucket's update is on FerretDB v1: read, then write back), release; one take in 5 'crashes' (leaves
without releasing), so the others take over after the TTL. An increment lost = two holders at once.
Also: how often FerretDB's delete_one({_id, holder: X}) deletes a document whose holder is not X.
Usage: GRIDLOOP_TEST_MONGODB=mongodb://127.0.0.1:PORT/x python benchmarks/ferretdb_lock.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import secrets
import threading
import time
import uuid

import pymongo
from pymongo.errors import DuplicateKeyError

from gridloop.platform.store.mongo.writer_lock import GenerationLock

WORKERS, TTL_MS = 4, 1000


class OldLock:
    """The lock before GenerationLock: one document, a crashed holder's deleted with a filter on its holder."""

    def __init__(self, collection, token: str, ttl_ms: int) -> None:
        self.c, self.token, self.ttl_ms = collection, token, ttl_ms

    def try_take(self) -> bool:
        now = time.time_ns() // 1_000_000
        try:
            self.c.insert_one({"_id": "writer", "holder": self.token, "until": now + self.ttl_ms})
            return True
        except DuplicateKeyError:
            held = self.c.find_one({"_id": "writer"})
            if held is not None and held.get("until", 0) < now:
                self.c.delete_one({"_id": "writer", "holder": held["holder"]})
            return False

    def release(self) -> None:
        self.c.delete_one({"_id": "writer", "holder": self.token})


def exclusion(base: str, kind: str, seconds: float) -> tuple[int, int]:
    """(increments done, increments counted) with the lock of this kind."""
    name = "lockx_" + secrets.token_hex(3)
    done = [0] * WORKERS
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        with pymongo.MongoClient(f"{base}/{name}") as client:
            db = client.get_default_database()
            while time.monotonic() < stop:
                make = OldLock if kind == "old" else GenerationLock
                lock = make(db.locks, uuid.uuid4().hex, TTL_MS)
                while not lock.try_take():
                    time.sleep(0.002)
                n = (db.counter.find_one({"_id": "c"}) or {"n": 0})["n"]
                db.counter.replace_one({"_id": "c"}, {"_id": "c", "n": n + 1}, upsert=True)
                done[i] += 1
                if done[i] % 5:
                    lock.release()  # else: 'crashed' holding it

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with pymongo.MongoClient(f"{base}/{name}") as client:
        counted = client.get_default_database().counter.find_one({"_id": "c"})["n"]
        client.drop_database(name)
    return sum(done), counted


def filtered_delete(base: str, seconds: float) -> tuple[int, int]:
    """(cycles, times a delete_one filtered on holder 'old' removed the lock of holder 'new')."""
    name = "lockd_" + secrets.token_hex(3)
    stop = time.monotonic() + seconds
    counts = {"cycles": 0, "wrong": 0}
    c1, c2 = pymongo.MongoClient(f"{base}/{name}"), pymongo.MongoClient(f"{base}/{name}")
    mine, theirs = c1.get_default_database().locks, c2.get_default_database().locks

    def cycler() -> None:
        while time.monotonic() < stop:
            mine.delete_many({"_id": "writer"})
            mine.insert_one({"_id": "writer", "holder": "old"})
            time.sleep(0.001)
            mine.delete_one({"_id": "writer", "holder": "old"})
            try:
                mine.insert_one({"_id": "writer", "holder": "new"})
            except DuplicateKeyError:
                continue
            time.sleep(0.003)
            counts["wrong"] += mine.find_one({"_id": "writer"}) is None  # only 'old' is ever deleted by the other
            counts["cycles"] += 1

    def deleter() -> None:
        while time.monotonic() < stop:
            theirs.delete_one({"_id": "writer", "holder": "old"})

    threads = [threading.Thread(target=cycler), threading.Thread(target=deleter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c1.drop_database(name)
    c1.close()
    c2.close()
    return counts["cycles"], counts["wrong"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    base = os.environ["GRIDLOOP_TEST_MONGODB"].rsplit("/", 1)[0]
    cycles, wrong = filtered_delete(base, args.seconds / 2)
    print(f"filtered delete_one removed a non-matching lock: {wrong} of {cycles} cycles")
    for kind in ("old", "generation"):
        done, counted = exclusion(base, kind, args.seconds)
        print(f"{kind:>10} lock: {done} increments, {counted} counted, lost {done - counted} "
              f"({(done - counted) / max(done, 1):.1%})")


if __name__ == "__main__":
    main()
