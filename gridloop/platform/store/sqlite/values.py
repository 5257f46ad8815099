"""A reading's values as the SQLite store keeps them: the id of its quantity set and the values as packed float64.

A JSON object per reading spelled every quantity name again (about 400 of 560 bytes of a 9-quantity reading);
here a reading carries a small integer (its *shape*: the ordered tuple of quantity names, kept once in
``shapes``) and 8 bytes per value, lossless. Readings of one shape are packed together by numpy.
"""

from __future__ import annotations

import sqlite3
from itertools import chain
from operator import itemgetter

import numpy as np

from gridloop.platform.envelope import Reading

Shape = tuple[str, ...]
SEPARATOR = ","  # quantity names (the contract's) contain none
_Q = itemgetter(3)


class ShapeCodec:
    """Shape ids of one store file, cached; new shapes are added inside the caller's write transaction."""

    def __init__(self) -> None:
        self._ids: dict[Shape, int] = {}
        self._names: dict[int, Shape] = {}

    def forget(self) -> None:
        """Drop what it learnt (after a rollback: shapes added in that transaction are gone)."""
        self._ids.clear()
        self._names.clear()

    def _load(self, db: sqlite3.Connection) -> None:
        for shape_id, names in db.execute("SELECT id, names FROM shapes"):
            shape = tuple(names.split(SEPARATOR))
            self._ids[shape], self._names[shape_id] = shape_id, shape

    def shape_id(self, db: sqlite3.Connection, shape: Shape) -> int:
        """The shape's id, created if new (call inside a write transaction: another process may add shapes too)."""
        found = self._ids.get(shape)
        if found is None:
            key = SEPARATOR.join(shape)
            db.execute("INSERT OR IGNORE INTO shapes (names) VALUES (?)", (key,))
            found = db.execute("SELECT id FROM shapes WHERE names=?", (key,)).fetchone()[0]
            self._ids[shape], self._names[found] = found, shape
        return found

    def names(self, db: sqlite3.Connection, shape_id: int) -> Shape:
        found = self._names.get(shape_id)
        if found is None:  # written by another process since this one loaded the table
            self._load(db)
            found = self._names[shape_id]
        return found

    def rows(self, db: sqlite3.Connection, tenant: str, readings: list[Reading]) -> list[tuple]:
        """(tenant, dev, ts, seq, shape id, packed values) per reading, packed a shape at a time."""
        shapes = list(map(tuple, map(_Q, readings)))  # C-level loops: no Python frame per reading
        groups: dict[Shape, list[Reading]] = {}
        if len(set(shapes)) == 1:
            groups[shapes[0]] = readings
        else:
            for shape, r in zip(shapes, readings, strict=True):
                groups.setdefault(shape, []).append(r)
        out: list[tuple] = []
        for shape, group in groups.items():
            width = 8 * len(shape)
            flat = np.fromiter(chain.from_iterable(map(dict.values, map(_Q, group))), np.float64,
                               len(group) * len(shape)).astype("<f8", copy=False)
            buf = flat.tobytes()
            sid = self.shape_id(db, shape)
            out.extend((tenant, r[0], r[1], r[2], sid, buf[i * width:(i + 1) * width]) for i, r in enumerate(group))
        return out

    def values(self, db: sqlite3.Connection, shape_id: int, packed: bytes) -> dict[str, float]:
        return dict(zip(self.names(db, shape_id), np.frombuffer(packed, "<f8").tolist(), strict=True))
