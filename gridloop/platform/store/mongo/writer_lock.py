"""The cross-process write lock on FerretDB v1, built only on what FerretDB does atomically: inserting a unique _id.

FerretDB v1 checks a delete's or update's filter apart from the write (it reads the matching documents, then
writes them back or deletes them by _id). So ``delete_one({_id: "writer", holder: the dead one})`` — taking over
a crashed holder's lock — can delete a lock another process has just taken in its place, and two processes then
write at once; their read-modify-write of one readings bucket loses one of them: acknowledged readings lost.
Measured: a filtered delete removed a document its filter did not match in 2 of 158 tries
(benchmarks/RESULTS-durability.md).

So the lock is a sequence of generations, ``locks._id: "writer:<n>"``: the newest generation's document says who
holds it until when. To take the lock, a process inserts generation n+1 once generation n is released or expired;
of all who try, the insert lets exactly one win. Only its holder ever writes a generation's document (renewal,
release), so no write races another. Old generations are deleted by age, and a taker that finds a newer generation
than its own after inserting (it read a stale n) backs off.
"""

from __future__ import annotations

import time

import pymongo
from pymongo import DESCENDING
from pymongo.errors import DuplicateKeyError

LOCK = "writer"
KEEP_GENERATIONS = 8  # older generations are deleted (every KEEP_GENERATIONS-th taking): a short collection


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class GenerationLock:
    """One holder at a time across processes, a crashed holder's lock taken over after ``ttl_ms``."""

    def __init__(self, collection: pymongo.collection.Collection, token: str, ttl_ms: int) -> None:
        self._locks = collection
        self._token = token
        self._ttl_ms = ttl_ms
        self._held: int | None = None  # the generation this process holds
        self._renewed = 0.0  # time.monotonic() of taking or renewing

    @property
    def held_for_s(self) -> float:
        return time.monotonic() - self._renewed

    def _newest(self) -> dict | None:
        return self._locks.find_one({"name": LOCK}, sort=[("gen", DESCENDING)])

    def try_take(self) -> bool:
        """Take the lock if it is free (released, or its holder let it expire); True if this process holds it."""
        newest = self._newest()
        if newest is not None and newest.get("until", 0) >= _now_ms():
            return False
        gen = (newest["gen"] if newest is not None else 0) + 1
        try:
            self._locks.insert_one({"_id": f"{LOCK}:{gen}", "name": LOCK, "gen": gen, "holder": self._token,
                                    "until": _now_ms() + self._ttl_ms})
        except DuplicateKeyError:
            return False  # another process took this generation first
        self._held, self._renewed = gen, time.monotonic()
        latest = self._newest()
        if latest is None or latest["gen"] != gen:  # took a generation below the newest: n was read stale
            self.release()
            return False
        if gen % KEEP_GENERATIONS == 0:  # generations never change once superseded: deleting them races nothing
            self._locks.delete_many({"name": LOCK, "gen": {"$lt": gen - KEEP_GENERATIONS}})
        return True

    def still_held(self) -> bool:
        """True if nobody has taken a newer generation (after this holder let its own expire, someone may have)."""
        newest = self._newest()
        return self._held is not None and newest is not None and newest["gen"] == self._held

    def renew(self) -> None:
        """Extend the holding (only this process writes its generation's document)."""
        if self._held is not None:
            self._locks.update_one({"_id": f"{LOCK}:{self._held}"}, {"$set": {"until": _now_ms() + self._ttl_ms}})
            self._renewed = time.monotonic()

    def release(self) -> None:
        if self._held is not None:
            self._locks.update_one({"_id": f"{LOCK}:{self._held}"}, {"$set": {"until": 0}})
            self._held = None
