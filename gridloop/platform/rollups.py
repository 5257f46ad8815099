"""Clock-aligned rollup buckets: computed at ingest from newly stored readings, combined at query time.

Bucket keys are plain integer arithmetic on epoch ms (UTC, days start at 00:00 UTC), so every
store computes the same keys without database date functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter

import numpy as np

from gridloop.platform.envelope import Reading

# stored resolutions -> bucket width in ms
RESOLUTIONS: dict[str, int] = {"1m": 60_000, "15m": 900_000, "1h": 3_600_000, "1d": 86_400_000}
# query intervals -> (width ms, stored resolution it is computed from)
INTERVALS: dict[str, tuple[int, str]] = {
    "1m": (60_000, "1m"), "5m": (300_000, "1m"), "15m": (900_000, "15m"), "1h": (3_600_000, "1h"),
    "1d": (86_400_000, "1d"),
}
AGGS = ("mean", "min", "max", "sum", "last", "count")
ALL_WIDTHS: tuple[int, ...] = tuple(RESOLUTIONS.values())


# a stored bucket holds at least this many of a device's readings: a 15-minute bucket of a 5-minute meter (3 readings,
# 9 quantities) took more bytes than its readings, and answering it from the raw readings costs about as much
MIN_READINGS_PER_BUCKET = 60


def kept_widths(interval_ms: int) -> tuple[int, ...]:
    """The resolutions (widths, ms) stored for a device reading every ``interval_ms``: those whose bucket holds at
    least MIN_READINGS_PER_BUCKET of its readings (1 Hz: all; 1 min: 1h and 1d; 5 or 15 min: 1d); the others are
    answered from the raw readings, and stored only as the raw readings leave (retention). 0, no interval: all."""
    return tuple(w for w in ALL_WIDTHS if w >= MIN_READINGS_PER_BUCKET * interval_ms)


@dataclass
class RollupBucket:
    """Statistics of one quantity of one device over one clock-aligned bucket."""

    dev: str
    start: int  # bucket start, epoch ms UTC
    n: int
    sum: float
    min: float
    max: float
    first_ts: int
    first: float
    last_ts: int
    last: float

    def merge(self, other: RollupBucket) -> None:
        """Fold another bucket's statistics into this one (same or another device)."""
        self.n += other.n
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        if other.first_ts < self.first_ts:
            self.first_ts, self.first = other.first_ts, other.first
        if other.last_ts > self.last_ts:
            self.last_ts, self.last = other.last_ts, other.last


def bucket_start(ts: int, width: int) -> int:
    return ts - ts % width


def compute_rollups(readings: Iterable[Reading]) -> dict[tuple[str, str, str, int], RollupBucket]:
    """Per (dev, quantity, resolution, bucket start) statistics of readings (each (dev, ts) at most once)."""
    minute: dict[tuple[str, str, int], RollupBucket] = {}
    for r in readings:
        b = r.ts - r.ts % 60_000
        for q, v in r.q.items():
            key = (r.dev, q, b)
            cur = minute.get(key)
            if cur is None:
                minute[key] = RollupBucket(r.dev, b, 1, v, v, v, r.ts, v, r.ts, v)
            else:
                cur.n += 1
                cur.sum += v
                if v < cur.min:
                    cur.min = v
                if v > cur.max:
                    cur.max = v
                if r.ts < cur.first_ts:
                    cur.first_ts, cur.first = r.ts, v
                if r.ts > cur.last_ts:
                    cur.last_ts, cur.last = r.ts, v
    out: dict[tuple[str, str, str, int], RollupBucket] = {}
    for (dev, q, b), bucket in minute.items():
        out[(dev, q, "1m", b)] = bucket
        for res in ("15m", "1h", "1d"):
            start = b - b % RESOLUTIONS[res]
            key = (dev, q, res, start)
            cur = out.get(key)
            if cur is None:
                out[key] = RollupBucket(dev, start, bucket.n, bucket.sum, bucket.min, bucket.max, bucket.first_ts,
                                        bucket.first, bucket.last_ts, bucket.last)
            else:
                cur.merge(bucket)
    return out


def combine(buckets: Iterable[RollupBucket], width: int) -> list[RollupBucket]:
    """Merge stored buckets (of one or many devices) into buckets of ``width``, ordered by start."""
    return merge_by_start(buckets, lambda ts: ts - ts % width)


def merge_by_start(buckets: Iterable[RollupBucket], start_of: Callable[[int], int | None]) -> list[RollupBucket]:
    """Merge buckets (of one or many devices) into those starting at ``start_of(b.start)`` (None: left out),
    ordered by start."""
    out: dict[int, RollupBucket] = {}
    for b in buckets:
        start = start_of(b.start)
        if start is None:
            continue
        cur = out.get(start)
        if cur is None:
            out[start] = RollupBucket("", start, b.n, b.sum, b.min, b.max, b.first_ts, b.first, b.last_ts, b.last)
        else:
            cur.merge(b)
    return [out[k] for k in sorted(out)]


def value_of(bucket: RollupBucket, agg: str) -> float:
    """The one number ``agg`` asks for from a combined bucket."""
    if agg == "mean":
        return bucket.sum / bucket.n
    if agg == "count":
        return float(bucket.n)
    return float(getattr(bucket, agg))


_DEV, _TS, _Q = itemgetter(0), itemgetter(1), itemgetter(3)  # Reading fields, read in C
RollupRow = tuple[str, str, str, int, int, int, float, float, float, int, float, int, float]


def rollup_rows(tenant: str, readings: list[Reading], widths: tuple[int, ...] = ALL_WIDTHS) -> list[RollupRow]:
    """One (tenant, dev, q, width, bucket start, n, sum, min, max, fts, fv, lts, lv) row per bucket touched, via numpy.

    Readings with the same quantity set are grouped into one value matrix; one sort by (device, ts) then
    serves every resolution, because coarser buckets are unions of consecutive finer ones. Readings of one
    bucket with different quantity sets give one row per set: the store's upsert folds rows of one key.
    """
    shapes = list(map(tuple, map(_Q, readings)))  # C-level loops: no Python frame per reading
    if len(set(shapes)) == 1:
        return _shape_rows(tenant, shapes[0], readings, widths)
    by_shape: dict[tuple[str, ...], list[Reading]] = {}
    for shape, r in zip(shapes, readings, strict=True):
        group = by_shape.get(shape)
        if group is None:
            by_shape[shape] = [r]
        else:
            group.append(r)
    out: list[RollupRow] = []
    for shape, group in by_shape.items():
        out.extend(_shape_rows(tenant, shape, group, widths))
    return out


def _shape_rows(tenant: str, shape: tuple[str, ...], group: list[Reading], widths: tuple[int, ...]
                ) -> list[RollupRow]:
    ts = np.fromiter(map(_TS, group), np.int64, len(group))
    values = np.array(list(map(list, map(dict.values, map(_Q, group)))), dtype=np.float64)
    return columns_rows(tenant, shape, list(map(_DEV, group)), ts, values.reshape(len(group), len(shape)), widths)


def columns_rows(tenant: str, shape: tuple[str, ...], dev_names: list[str], ts: np.ndarray, values: np.ndarray,
                 widths: tuple[int, ...] = ALL_WIDTHS) -> list[RollupRow]:
    """Rollup rows of readings given as columns: device names, ts (int64) and a (readings x quantities) matrix."""
    if not dev_names:
        return []
    dev_ids = {d: i for i, d in enumerate(dict.fromkeys(dev_names))}
    devs = np.fromiter(map(dev_ids.__getitem__, dev_names), np.int64, len(dev_names))
    order = np.lexsort((ts, devs))
    devs, ts, values = devs[order], ts[order], values[order]
    names = np.array(list(dev_ids), dtype=object)
    out: list[RollupRow] = []
    for width in widths:
        b = ts - ts % width
        change = np.empty(len(ts), dtype=bool)
        change[0] = True
        np.not_equal(devs[1:], devs[:-1], out=change[1:])
        change[1:] |= b[1:] != b[:-1]
        starts = np.flatnonzero(change)
        ends = np.append(starts[1:], len(ts)) - 1
        n = (ends - starts + 1).tolist()
        sums = np.add.reduceat(values, starts, axis=0)
        mins = np.minimum.reduceat(values, starts, axis=0)
        maxs = np.maximum.reduceat(values, starts, axis=0)
        first, last = values[starts], values[ends]
        gdev, gb = names[devs[starts]].tolist(), b[starts].tolist()
        fts, lts = ts[starts].tolist(), ts[ends].tolist()
        for j, q in enumerate(shape):
            out.extend(zip([tenant] * len(gdev), gdev, [q] * len(gdev), [width] * len(gdev), gb, n, sums[:, j].tolist(),
                           mins[:, j].tolist(), maxs[:, j].tolist(), fts, first[:, j].tolist(), lts,
                           last[:, j].tolist(), strict=True))
    return out
