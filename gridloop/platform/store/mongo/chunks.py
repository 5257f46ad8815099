"""Reading chunks in MongoDB: the readings of one ingest batch (one tenant, one quantity set) as columns.

MongoDB's own time-series collections keep a bucket of measurements as columns; so does this store, written
insert-only (one insert per batch, not one update per reading). A chunk document holds:

- ``_id``: ``tenant|t0|digest``, ``digest`` hashing the chunk's sorted (dev, ts) keys: the same readings give
  the same id;
- ``tenant``, ``t0``, ``t1``, ``n``: the tenant, the first and last timestamp, how many readings;
- ``devs``: the chunk's devices, sorted, once each (indexed: a device's readings are found by it);
- ``q``: the quantity names, in the order of the value columns;
- ``di``, ``ts``, ``seq``, ``v``: per reading its device (index into ``devs``, uint32), timestamp and sequence
  number (int64; a missing seq is ``NO_SEQ``) and its values (float64, a row per reading), little-endian, lossless;
- ``rolled``: its readings are folded into the rollups (set once that is done).

Which chunk holds a reading is kept in ``reading_keys`` (readings.py): ``_id`` ``tenant|dev|ts``, ``c`` the chunk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np
from bson import Binary

from gridloop.platform.envelope import Reading

CHUNK_MAX = 5_000  # readings per chunk document (9 quantities: about 460 kB, far below MongoDB's 16 MB)
NO_SEQ = -(2**63)
_Q = itemgetter(3)


def reading_key(tenant: str, dev: str, ts: int) -> str:
    """The _id of a reading's key document: one per (tenant, dev, ts), whichever chunk holds the reading."""
    return f"{tenant}|{dev}|{ts}"


@dataclass
class ChunkPlan:
    """Readings of one shape meant for one chunk document, and the keys they claim."""

    tenant: str
    shape: tuple[str, ...]
    readings: list[Reading]
    keys: list[str] = field(init=False)
    id: str = field(init=False)

    def __post_init__(self) -> None:
        """The id is deterministic: the same readings (by (dev, ts)) always make the same chunk id."""
        self.keys = [reading_key(self.tenant, r.dev, r.ts) for r in self.readings]
        digest = hashlib.blake2b("\n".join(sorted(self.keys)).encode(), digest_size=12).hexdigest()
        first = min((r.ts for r in self.readings), default=0)
        self.id = f"{self.tenant}|{first:013d}|{digest}"

    def keep(self, kept: set[str]) -> ChunkPlan:
        """The plan with only the readings whose keys are in ``kept``."""
        return ChunkPlan(self.tenant, self.shape, [r for r, k in zip(self.readings, self.keys, strict=True)
                                                   if k in kept])

    def document(self) -> dict:
        rows = self.readings
        devs = sorted({r.dev for r in rows})
        index = {d: i for i, d in enumerate(devs)}
        ts = np.fromiter((r.ts for r in rows), np.int64, len(rows))
        seq = np.fromiter((NO_SEQ if r.seq is None else r.seq for r in rows), np.int64, len(rows))
        values = np.array([list(r.q.values()) for r in rows], dtype="<f8").reshape(len(rows), len(self.shape))
        return {
            "_id": self.id, "tenant": self.tenant, "t0": int(ts.min()), "t1": int(ts.max()), "n": len(rows),
            "devs": devs, "q": list(self.shape),
            "di": Binary(np.fromiter((index[r.dev] for r in rows), "<u4", len(rows)).tobytes()),
            "ts": Binary(ts.astype("<i8").tobytes()), "seq": Binary(seq.astype("<i8").tobytes()),
            "v": Binary(values.tobytes()), "rolled": False,
        }


def plan_chunks(tenant: str, readings: list[Reading]) -> list[ChunkPlan]:
    """The batch's readings (one per (dev, ts): the first wins) by quantity set, CHUNK_MAX per chunk."""
    seen: set[tuple[str, int]] = set()
    by_shape: dict[tuple[str, ...], list[Reading]] = {}
    for r in readings:
        if (r.dev, r.ts) in seen:
            continue
        seen.add((r.dev, r.ts))
        by_shape.setdefault(tuple(r.q), []).append(r)
    return [ChunkPlan(tenant, shape, rows[off:off + CHUNK_MAX])
            for shape, rows in by_shape.items() for off in range(0, len(rows), CHUNK_MAX)]


def of_devices(di: np.ndarray, devs: list[str], devices: list[str]) -> np.ndarray:
    """A mask of the rows whose device (``di``, an index into ``devs``) is one of ``devices``."""
    wanted = set(devices)
    return np.isin(di, [i for i, d in enumerate(devs) if d in wanted])


@dataclass
class ChunkColumns:
    """A chunk document's columns, decoded (numpy views of its binary fields)."""

    devs: list[str]
    quantities: list[str]
    di: np.ndarray
    ts: np.ndarray
    seq: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, doc: dict) -> ChunkColumns:
        n = int(doc["n"])
        qs = list(doc.get("q", []))
        values = np.frombuffer(doc["v"], "<f8").reshape(n, len(qs)) if "v" in doc else np.empty((n, len(qs)))
        seq = np.frombuffer(doc["seq"], "<i8") if "seq" in doc else np.full(n, NO_SEQ, np.int64)
        return cls(list(doc["devs"]), qs, np.frombuffer(doc["di"], "<u4"), np.frombuffer(doc["ts"], "<i8"), seq,
                   values)

    def rows_of(self, dev: str, lo: int, hi: int) -> Iterator[tuple[int, int | None, dict[str, float]]]:
        """(ts, seq, values) of ``dev``'s readings with lo <= ts < hi."""
        if dev not in self.devs:
            return
        pick = np.flatnonzero((self.di == self.devs.index(dev)) & (self.ts >= lo) & (self.ts < hi))
        for i in pick:
            s = int(self.seq[i])
            yield int(self.ts[i]), None if s == NO_SEQ else s, dict(zip(self.quantities, self.values[i].tolist(),
                                                                         strict=True))

    def keys(self, tenant: str, lo: int | None = None, hi: int | None = None) -> list[str]:
        """The key of each reading (with lo <= ts <= hi only, if given)."""
        di, ts = self.di, self.ts
        if lo is not None and hi is not None:
            inside = (ts >= lo) & (ts <= hi)
            di, ts = di[inside], ts[inside]
        return [reading_key(tenant, self.devs[d], t) for d, t in zip(di.tolist(), ts.tolist(), strict=True)]

    def readings(self) -> list[Reading]:
        out = []
        for d, t, s, v in zip(self.di.tolist(), self.ts.tolist(), self.seq.tolist(), self.values.tolist(),
                              strict=True):
            out.append(Reading(self.devs[d], t, None if s == NO_SEQ else s, dict(zip(self.quantities, v,
                                                                                    strict=True))))
        return out
