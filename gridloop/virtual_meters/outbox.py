"""What a DIA or gateway has published but the platform has not yet acknowledged as stored (contract.delivery).

Kept in SQLite: in a file, so that it survives a restart of the publisher (like a gateway's store-and-forward),
or in memory. Bounded: past ``max_envelopes`` the oldest are dropped, and counted.
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
    """Numbered envelopes awaiting the platform's acknowledgement; ids never repeat, across restarts too."""

    def __init__(self, path: str | Path | None = None, max_envelopes: int = 100_000) -> None:
        self.max_envelopes = max_envelopes
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

    def add(self, topic: str, payload: bytes, readings: int) -> tuple[int, bytes]:
        """Number an encoded envelope and keep it; returns (id, the payload with its id) to publish."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                number = self._db.execute("SELECT next_id FROM counter").fetchone()[0]
                numbered = with_id(payload, number)
                self._db.execute("UPDATE counter SET next_id = next_id + 1")
                self._db.execute("INSERT INTO envelopes VALUES (?,?,?,?,?)",
                                 (number, topic, numbered, readings, time.monotonic()))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._bound()
        return number, numbered

    def _bound(self) -> None:
        excess = self._count() - self.max_envelopes
        if excess > 0:
            rows = self._db.execute("SELECT id, readings FROM envelopes ORDER BY id LIMIT ?", (excess,)).fetchall()
            self._db.executemany("DELETE FROM envelopes WHERE id=?", [(r[0],) for r in rows])
            self.dropped_envelopes += len(rows)
            self.dropped_readings += sum(r[1] for r in rows)

    def acknowledge(self, ids: list[int]) -> int:
        """Forget the acknowledged envelopes; returns how many readings they held (unknown ids count 0)."""
        with self._lock:
            marks = ",".join("?" * len(ids))
            held = self._db.execute(f"SELECT COALESCE(SUM(readings), 0) FROM envelopes WHERE id IN ({marks})",
                                    ids).fetchone()[0]
            self._db.execute(f"DELETE FROM envelopes WHERE id IN ({marks})", ids)
        return int(held)

    def due(self, older_than_s: float) -> list[Pending]:
        """Envelopes last sent more than ``older_than_s`` ago (all of them after a restart), oldest first; they
        count as sent now."""
        now = time.monotonic()
        with self._lock:
            rows = self._db.execute("SELECT id, topic, payload FROM envelopes WHERE sent < ? ORDER BY id",
                                    (now - older_than_s,)).fetchall()
            self._db.executemany("UPDATE envelopes SET sent=? WHERE id=?", [(now, r[0]) for r in rows])
        return [Pending(*r) for r in rows]

    def _count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM envelopes").fetchone()[0]

    def __len__(self) -> int:
        with self._lock:
            return self._count()

    def readings(self) -> int:
        """Readings held, unacknowledged."""
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(SUM(readings), 0) FROM envelopes").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
