"""What a DIA or gateway has published but the platform has not yet acknowledged as stored (contract.delivery).

Kept in SQLite: in a file, so that it survives a restart of the publisher (like a gateway's store-and-forward),
or in memory. Bounded: past ``max_envelopes`` envelopes or ``max_readings`` readings the oldest are dropped, and
counted (a publisher's buffer is sized in readings, its envelopes may be far from full).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from gridloop.contract.bounds import SEQ_MAX
from gridloop.contract.delivery import with_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS envelopes (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL,
                                      readings INTEGER NOT NULL, sent REAL NOT NULL);
CREATE TABLE IF NOT EXISTS counter (one INTEGER PRIMARY KEY CHECK (one = 1), next_id INTEGER NOT NULL);
INSERT OR IGNORE INTO counter VALUES (1, 0);
"""


@dataclass(frozen=True)
class Pending:
    id: int
    topic: str
    payload: bytes


class Outbox:
    """Numbered envelopes awaiting the platform's acknowledgement; ids never repeat, across restarts too.

    The table is the truth (what survives a restart); an in-memory map of id -> readings mirrors it, so counting
    what is held and what an acknowledgement settles costs no query. Envelopes are added a step's worth at a
    time (:meth:`add_many`): one transaction, committed before any of them is handed out to be published.
    """

    def __init__(self, path: str | Path | None = None, max_envelopes: int = 100_000,
                 max_readings: int | None = None) -> None:
        self.max_envelopes = max_envelopes
        self.max_readings = max_readings
        self.dropped_envelopes = 0
        self.dropped_readings = 0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None,
                                   check_same_thread=False)
        if path:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # survives a crash of the process, which is the point
        self._db.executescript(SCHEMA)
        self._db.execute("UPDATE envelopes SET sent = 0")  # what a previous run left is due at once
        if not path:  # nothing kept across runs: start from the clock, so a late ack of an old run names no new id
            self._db.execute("UPDATE counter SET next_id = ?", (time.time_ns() // 1000 % SEQ_MAX,))
        self._held: dict[int, int] = dict(self._db.execute("SELECT id, readings FROM envelopes ORDER BY id"))
        self._held_readings = sum(self._held.values())

    def add(self, topic: str, payload: bytes, readings: int) -> tuple[int, bytes]:
        """Number an encoded envelope and keep it; returns (id, the payload with its id) to publish."""
        return self.add_many(topic, [(payload, readings)])[0]

    def add_many(self, topic: str, envelopes: list[tuple[bytes, int]]) -> list[tuple[int, bytes]]:
        """Number encoded envelopes (payload, readings) and keep them, in one transaction; returns (id, the
        payload with its id) of each, in order, once they are committed."""
        if not envelopes:
            return []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                first = self._db.execute("SELECT next_id FROM counter").fetchone()[0]
                numbered = [(first + k, with_id(payload, first + k)) for k, (payload, _) in enumerate(envelopes)]
                self._db.execute("UPDATE counter SET next_id = ?", (first + len(envelopes),))
                sent = time.monotonic()
                self._db.executemany("INSERT INTO envelopes VALUES (?,?,?,?,?)",
                                     [(number, topic, payload, readings, sent)
                                      for (number, payload), (_, readings) in zip(numbered, envelopes, strict=True)])
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            for (number, _), (_, readings) in zip(numbered, envelopes, strict=True):
                self._held[number] = readings
            self._held_readings += sum(readings for _, readings in envelopes)
            self._bound()
        return numbered

    def _bound(self) -> None:
        excess = len(self._held) - self.max_envelopes
        over = self._held_readings - self.max_readings if self.max_readings is not None else 0
        if excess <= 0 and over <= 0:
            return
        oldest: list[int] = []
        dropped = 0
        for number, readings in self._held.items():  # ids only grow: insertion order is id order
            if len(oldest) >= excess and dropped >= over:
                break
            oldest.append(number)
            dropped += readings
        self._db.executemany("DELETE FROM envelopes WHERE id=?", [(i,) for i in oldest])
        for number in oldest:
            del self._held[number]
        self._held_readings -= dropped
        self.dropped_envelopes += len(oldest)
        self.dropped_readings += dropped

    def acknowledge(self, ids: list[int]) -> int:
        """Forget the acknowledged envelopes; returns how many readings they held (unknown ids count 0)."""
        with self._lock:
            known = list({i for i in ids if i in self._held})
            if not known:
                return 0
            marks = ",".join("?" * len(known))
            self._db.execute(f"DELETE FROM envelopes WHERE id IN ({marks})", known)
            held = sum(self._held.pop(i) for i in known)
            self._held_readings -= held
        return held

    def due(self, older_than_s: float) -> list[Pending]:
        """Envelopes last sent more than ``older_than_s`` ago (all of them after a restart), oldest first; they
        count as sent now."""
        now = time.monotonic()
        with self._lock:
            if not self._held:
                return []
            rows = self._db.execute("SELECT id, topic, payload FROM envelopes WHERE sent < ? ORDER BY id",
                                    (now - older_than_s,)).fetchall()
            self._db.executemany("UPDATE envelopes SET sent=? WHERE id=?", [(now, r[0]) for r in rows])
        return [Pending(*r) for r in rows]

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)

    def readings(self) -> int:
        """Readings held, unacknowledged."""
        with self._lock:
            return self._held_readings

    def close(self) -> None:
        with self._lock:
            self._db.close()
