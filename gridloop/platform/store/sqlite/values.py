"""A reading's values as the SQLite store keeps them: the id of its packing and the values packed, lossless.

A JSON object per reading spelled every quantity name again (about 400 of 560 bytes of a 9-quantity reading);
here a reading carries a small integer (its *shape*: the ordered quantity names and how each column is packed,
kept once in ``shapes``). Meters send values rounded to a resolution (0.1 V, 0.1 W, 0.1 Wh), so a column is
packed as the smallest integer that gives back every value of the batch bit for bit when divided by 10^d
(``i2:1`` = int16 tenths), and as float64 (``f8``) where none does: 9 values take about 24 bytes, not 72.
Layout 2 stores wrote names only (every column ``f8``); they read the same.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter

import numpy as np

from gridloop.platform.envelope import Reading

Shape = tuple[str, ...]
SEPARATOR = ","  # quantity names (the contract's) contain none
PACKING_SEPARATOR = "|"  # names | column codes; a key without it is a layout-2 shape (every column f8)
FLOAT = "f8"
MAX_DECIMALS = 6
EXACT_INT = 2**53  # integers a float64 holds exactly
INT_TYPES = (("i1", 2**7), ("i2", 2**15), ("i4", 2**31), ("i8", EXACT_INT))
_Q = itemgetter(3)


@dataclass(frozen=True)
class Packing:
    """How the rows of one shape are packed: the quantity names and, per column, its type and decimals."""

    names: Shape
    codes: tuple[str, ...]  # "f8" or "<int type>:<decimals>", e.g. "i2:1"

    @property
    def key(self) -> str:
        return SEPARATOR.join(self.names) + PACKING_SEPARATOR + SEPARATOR.join(self.codes)

    @classmethod
    def of_key(cls, key: str) -> Packing:
        names, _, codes = key.partition(PACKING_SEPARATOR)
        shape = tuple(names.split(SEPARATOR))
        return cls(shape, tuple(codes.split(SEPARATOR)) if codes else (FLOAT,) * len(shape))

    @property
    def dtype(self) -> np.dtype:
        return np.dtype([(f"c{j}", "<" + code.partition(":")[0]) for j, code in enumerate(self.codes)])

    def pack(self, matrix: np.ndarray) -> bytes:
        """The rows of ``matrix`` (readings x columns) packed back to back, ``dtype.itemsize`` bytes each."""
        out = np.empty(len(matrix), self.dtype)
        for j, code in enumerate(self.codes):
            kind, _, decimals = code.partition(":")
            out[f"c{j}"] = matrix[:, j] if kind == FLOAT else np.rint(matrix[:, j] * 10.0 ** int(decimals))
        return out.tobytes()

    def unpack(self, packed: bytes) -> np.ndarray:
        """Rows packed by ``pack`` (or layout 2's float64 rows) back to their float64 matrix, bit for bit."""
        rows = np.frombuffer(packed, self.dtype)
        matrix = np.empty((len(rows), len(self.codes)), np.float64)
        for j, code in enumerate(self.codes):
            kind, _, decimals = code.partition(":")
            col = rows[f"c{j}"]
            matrix[:, j] = col if kind == FLOAT else col.astype(np.float64) / 10.0 ** int(decimals)
        return matrix


def column_code(x: np.ndarray) -> str:
    """The smallest packing of a float64 column that gives back every value bit for bit (-0.0, NaN: ``f8``)."""
    bits = x.view(np.int64)
    for decimals in range(MAX_DECIMALS + 1):
        scale = 10.0 ** decimals
        with np.errstate(invalid="ignore", over="ignore"):
            n = np.rint(x * scale)
        if not np.isfinite(n).all() or np.abs(n).max(initial=0.0) >= EXACT_INT:
            return FLOAT
        back = n.astype(np.int64).astype(np.float64) / scale
        if np.array_equal(back.view(np.int64), bits):
            lo, hi = n.min(initial=0.0), n.max(initial=0.0)
            kind = next(name for name, bound in INT_TYPES if -bound <= lo and hi < bound)
            return f"{kind}:{decimals}"
    return FLOAT


class ShapeCodec:
    """Shape ids of one store file, cached; new shapes are added inside the caller's write transaction."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._packings: dict[int, Packing] = {}

    def forget(self) -> None:
        """Drop what it learnt (after a rollback: shapes added in that transaction are gone)."""
        self._ids.clear()
        self._packings.clear()

    def _load(self, db: sqlite3.Connection) -> None:
        for shape_id, key in db.execute("SELECT id, names FROM shapes"):
            self._ids[key], self._packings[shape_id] = shape_id, Packing.of_key(key)

    def shape_id(self, db: sqlite3.Connection, packing: Packing) -> int:
        """The packing's id, created if new (call inside a write transaction: another process may add shapes)."""
        key = packing.key
        found = self._ids.get(key)
        if found is None:
            db.execute("INSERT OR IGNORE INTO shapes (names) VALUES (?)", (key,))
            found = db.execute("SELECT id FROM shapes WHERE names=?", (key,)).fetchone()[0]
            self._ids[key], self._packings[found] = found, packing
        return found

    def packing(self, db: sqlite3.Connection, shape_id: int) -> Packing:
        found = self._packings.get(shape_id)
        if found is None:  # written by another process since this one loaded the table
            self._load(db)
            found = self._packings[shape_id]
        return found

    def names(self, db: sqlite3.Connection, shape_id: int) -> Shape:
        return self.packing(db, shape_id).names

    def matrix(self, db: sqlite3.Connection, shape_id: int, blobs: list[bytes]) -> np.ndarray:
        """The float64 values (rows x the shape's quantities) of packed rows of one shape."""
        return self.packing(db, shape_id).unpack(b"".join(blobs))

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
            matrix = np.fromiter(chain.from_iterable(map(dict.values, map(_Q, group))), np.float64,
                                 len(group) * len(shape)).reshape(len(group), len(shape))
            packing = Packing(shape, tuple(column_code(matrix[:, j]) for j in range(len(shape))))
            buf, width = packing.pack(matrix), packing.dtype.itemsize
            sid = self.shape_id(db, packing)
            out.extend((tenant, r[0], r[1], r[2], sid, buf[i * width:(i + 1) * width]) for i, r in enumerate(group))
        return out


def stored_values(path: str) -> list[tuple[str, int, int | None, tuple[tuple[str, str], ...]]]:
    """Every reading in the SQLite store file ``path`` as (device, ts, seq, ((quantity, value as float.hex), ...)),
    ordered: the values stored, whatever packing each batch got (which depends on how ingest batched them), so two
    runs' stores compare equal exactly when they hold the same readings."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT r.dev, r.ts, r.seq, s.names, r.v FROM readings r JOIN shapes s ON s.id = r.shape"
                          " ORDER BY r.tenant, r.dev, r.ts").fetchall()
    out, packings = [], {}
    for dev, ts, seq, key, packed in rows:
        packing = packings.get(key) or packings.setdefault(key, Packing.of_key(key))
        values = packing.unpack(packed)[0]
        out.append((dev, ts, seq, tuple((n, float(v).hex()) for n, v in zip(packing.names, values, strict=True))))
    return out
