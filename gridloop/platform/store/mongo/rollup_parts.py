"""Rollup parts: the buckets one fold computed (rollups.py), inserted as columns, never updated.

FerretDB v1 (the tests' server) scans the collection for every update: upserting a bucket per device and
resolution fell to about 30 upserts/s once a few hundred buckets were stored. A fold therefore inserts its buckets
as one document per resolution (PART_MAX rows at most), and queries merge the parts of a bucket (a bucket a fold
saw only in part, such as the day so far, has a row in several parts):

- ``_id``: ``<fold id>|<res>|<k>``, the fold id hashing the chunks it folded: a fold run again inserts the same ids;
- ``tenant``, ``res``, ``b0``, ``b1``: the tenant, the resolution and the first and last bucket start;
- ``devs``, ``q``: the devices (sorted, indexed) and quantities the rows name;
- ``di`` (uint32), ``qi`` (uint16), ``b``, ``n``, ``fts``, ``lts`` (int64), ``sum``, ``min``, ``max``, ``fv``,
  ``lv`` (float64): one row per (device, quantity, bucket), little-endian.
"""

from __future__ import annotations

import numpy as np
from bson import Binary

from gridloop.platform.rollups import RESOLUTIONS, RollupBucket, RollupRow
from gridloop.platform.store.mongo.chunks import of_devices

PART_MAX = 100_000  # rows per part document (about 7 MB)
INTS = ("b", "n", "fts", "lts")
FLOATS = ("sum", "min", "max", "fv", "lv")
INT_FIELDS = {"b": "start", "n": "n", "fts": "first_ts", "lts": "last_ts"}  # column -> RollupBucket field
FLOAT_FIELDS = {"sum": "sum", "min": "min", "max": "max", "fv": "first", "lv": "last"}


def part_docs(tenant: str, fold_id: str, res: str, buckets: list[tuple[str, str, RollupBucket]]) -> list[dict]:
    """The part documents of one resolution: buckets as (dev, quantity, bucket), in a deterministic order."""
    buckets = sorted(buckets, key=lambda x: (x[0], x[1], x[2].start))
    devs = sorted({d for d, _, _ in buckets})
    qs = sorted({q for _, q, _ in buckets})
    dev_i, q_i = {d: i for i, d in enumerate(devs)}, {q: i for i, q in enumerate(qs)}
    cols = {"di": np.array([dev_i[d] for d, _, _ in buckets], np.int64),
            "qi": np.array([q_i[q] for _, q, _ in buckets], np.int64)}
    cols.update({c: np.array([getattr(b, f) for _, _, b in buckets], np.int64) for c, f in INT_FIELDS.items()})
    cols.update({c: np.array([getattr(b, f) for _, _, b in buckets], np.float64) for c, f in FLOAT_FIELDS.items()})
    return column_part_docs(tenant, fold_id, res, devs, qs, cols)


def part_rows(tenant: str, doc: dict, devices: list[str] | None = None, quantity: str | None = None,
              keep: np.ndarray | None = None) -> list[RollupRow]:
    """The rows of a part (of ``devices`` and ``quantity`` only, if given; ``keep``: a mask of its own)."""
    di = np.frombuffer(doc["di"], "<u4")
    qi = np.frombuffer(doc["qi"], "<u2")
    mask = np.ones(len(di), dtype=bool) if keep is None else keep.copy()
    if devices is not None:
        mask &= of_devices(di, doc["devs"], devices)
    if quantity is not None:
        if quantity not in doc["q"]:
            return []
        mask &= qi == doc["q"].index(quantity)
    pick = np.flatnonzero(mask)
    ints = {c: np.frombuffer(doc[c], "<i8")[pick].tolist() for c in INTS}
    floats = {c: np.frombuffer(doc[c], "<f8")[pick].tolist() for c in FLOATS}
    width = RESOLUTIONS[doc["res"]]
    devs, qs = doc["devs"], doc["q"]
    return [(tenant, devs[d], qs[q], width, ints["b"][j], ints["n"][j], floats["sum"][j], floats["min"][j],
             floats["max"][j], ints["fts"][j], floats["fv"][j], ints["lts"][j], floats["lv"][j])
            for j, (d, q) in enumerate(zip(di[pick].tolist(), qi[pick].tolist(), strict=True))]


def merged_columns(docs: list[dict]) -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    """The parts' rows merged per (device, quantity, bucket), column-wise: (devices, quantities, columns), rows
    sorted by device, quantity and bucket; n and sum add up, min and max of all, first (last) of the earliest
    (latest) reading."""
    devs = sorted({d for doc in docs for d in doc["devs"]})
    qs = sorted({q for doc in docs for q in doc["q"]})
    dev_at, q_at = {d: i for i, d in enumerate(devs)}, {q: i for i, q in enumerate(qs)}
    di = np.concatenate([np.array([dev_at[d] for d in doc["devs"]], np.int64)[np.frombuffer(doc["di"], "<u4")]
                         for doc in docs])
    qi = np.concatenate([np.array([q_at[q] for q in doc["q"]], np.int64)[np.frombuffer(doc["qi"], "<u2")]
                         for doc in docs])
    cols = {c: np.concatenate([np.frombuffer(doc[c], "<i8") for doc in docs]) for c in INTS}
    cols.update({c: np.concatenate([np.frombuffer(doc[c], "<f8") for doc in docs]) for c in FLOATS})
    by_first = np.lexsort((cols["fts"], cols["b"], qi, di))  # each key's rows together, earliest reading first
    di, qi = di[by_first], qi[by_first]
    cols = {c: v[by_first] for c, v in cols.items()}
    new_key = np.ones(len(di), dtype=bool)
    new_key[1:] = (di[1:] != di[:-1]) | (qi[1:] != qi[:-1]) | (cols["b"][1:] != cols["b"][:-1])
    starts = np.flatnonzero(new_key)
    latest = _argmax_per_group(cols["lts"], starts)  # the row of each key's latest reading
    out = {"di": di[starts], "qi": qi[starts], "b": cols["b"][starts],
           "n": np.add.reduceat(cols["n"], starts), "sum": np.add.reduceat(cols["sum"], starts),
           "min": np.minimum.reduceat(cols["min"], starts), "max": np.maximum.reduceat(cols["max"], starts),
           "fts": cols["fts"][starts], "fv": cols["fv"][starts], "lts": cols["lts"][latest], "lv": cols["lv"][latest]}
    return devs, qs, out


def _argmax_per_group(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The row of each group's (rows starts[i]:starts[i+1]) largest value."""
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(values))))
    return np.lexsort((-values, group))[starts]  # per group, the largest value first


def column_part_docs(tenant: str, merge_id: str, res: str, devs: list[str], qs: list[str],
                     cols: dict[str, np.ndarray]) -> list[dict]:
    """Part documents (PART_MAX rows each) of rows given as columns (``di``/``qi`` index ``devs``/``qs``), ids
    ``<fold or merge id>|<res>|<k>``."""
    out = []
    for k, off in enumerate(range(0, len(cols["b"]), PART_MAX)):
        rows = slice(off, off + PART_MAX)
        used_d, di = np.unique(cols["di"][rows], return_inverse=True)
        used_q, qi = np.unique(cols["qi"][rows], return_inverse=True)
        doc = {"_id": f"{merge_id}|{res}|{k}", "tenant": tenant, "res": res, "b0": int(cols["b"][rows].min()),
               "b1": int(cols["b"][rows].max()), "devs": [devs[i] for i in used_d.tolist()],
               "q": [qs[i] for i in used_q.tolist()], "di": Binary(di.astype("<u4").tobytes()),
               "qi": Binary(qi.astype("<u2").tobytes()), "rows": int(len(di))}
        doc.update({c: Binary(cols[c][rows].astype("<i8").tobytes()) for c in INTS})
        doc.update({c: Binary(cols[c][rows].astype("<f8").tobytes()) for c in FLOATS})
        out.append(doc)
    return out
