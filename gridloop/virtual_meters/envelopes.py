"""Telemetry envelopes (the contract's section 2) built column-wise from a :class:`MeterSample`.

:func:`encode_envelopes_exact` gives the bytes of orjson on one dict per reading (what the DIA sends);
:func:`~gridloop.virtual_meters.envelopes_fixed_width.encode_envelopes` the same readings in fixed-width rows.
Readings carry their meter's clock time when the sample has one; NaN values are left out.
"""

from __future__ import annotations

import re

import numpy as np
import orjson

from gridloop.virtual_meters.electricity import MeterSample
from gridloop.virtual_meters.meter_types.bank import ClockedSample


def split_finite(sample: MeterSample) -> list[MeterSample]:
    """The sample split into groups of meters that share the same set of finite quantities, NaN columns dropped.

    Makes a single-phase bank's sample safe for :class:`DeviceIntegrationAdapter` (which sends every column).
    """
    names = list(sample.quantities)
    if not names or not sample.devices:
        return [sample]
    finite = np.stack([np.isfinite(sample.quantities[k]) for k in names], axis=1)  # (n, k)
    if finite.all():
        return [sample]
    if len(names) <= 62:  # one int64 key per meter: a 1-D unique is far cheaper than a row-wise one
        key = finite.astype(np.int64) @ (np.int64(1) << np.arange(len(names), dtype=np.int64))
        patterns, inverse = np.unique(key, return_inverse=True)
    else:
        patterns, inverse = np.unique(np.packbits(finite, axis=1, bitorder="little"), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    devices = np.asarray(sample.devices, dtype=object)
    meter_ts = getattr(sample, "meter_ts_ms", None)
    out: list[MeterSample] = []
    for g in range(len(patterns)):  # one pass per distinct pattern (at most a few), not per meter
        idx = np.flatnonzero(inverse == g)
        cols = np.flatnonzero(finite[idx[0]])
        quantities = {names[c]: sample.quantities[names[c]][idx] for c in cols}
        if meter_ts is None:
            out.append(MeterSample(sample.ts_ms, devices[idx].tolist(), sample.seq[idx], quantities))
        else:
            out.append(ClockedSample(sample.ts_ms, devices[idx].tolist(), sample.seq[idx], quantities, meter_ts[idx]))
    return out


SAFE_NAMES = re.compile(r"[a-z0-9_.\-]*")  # nothing that JSON would escape
SAFE_JOINED = re.compile(r"[a-z0-9_.,\-]*")


def encode_envelopes_exact(sample: MeterSample, batch: int = 500) -> list[bytes]:
    """Telemetry envelopes byte-identical to orjson on a dict per reading (what the DIA sends), about 2x faster.

    Built column-wise: orjson prints each column once, one ``join`` per envelope assembles them.
    Readings carry their meter's clock time when the sample has one; NaN values are left out.
    """
    groups = split_finite(sample)
    if len(groups) > 1:
        return [env for g in groups for env in encode_envelopes_exact(g, batch)]
    names = list(sample.quantities)
    n = len(sample.devices)
    meter_ts = getattr(sample, "meter_ts_ms", None)
    if n == 0:
        return []
    if not SAFE_NAMES.fullmatch("".join(sample.devices)) or not SAFE_NAMES.fullmatch("".join(names)):
        ts = [sample.ts_ms] * n if meter_ts is None else np.asarray(meter_ts).tolist()
        return _encode_with_orjson(sample, names, ts, batch)
    # one row of fragments per reading: ,{"dev":"<id>","ts":<ts>,"seq":<seq>,"q":{"<name>":<value>,...}}
    parts: list[bytes | list[bytes]] = [b',{"dev":"', ",".join(sample.devices).encode().split(b",")]
    if meter_ts is None:
        parts.append(f'","ts":{int(sample.ts_ms)},"seq":'.encode())
    else:
        parts += [b'","ts":', fragments(np.asarray(meter_ts, dtype=np.int64)), b',"seq":']
    parts.append(fragments(np.asarray(sample.seq)))
    for j, name in enumerate(names):
        lead = ',"q":{' if j == 0 else ","
        parts += [f'{lead}"{name}":'.encode(), fragments(sample.quantities[name])]
    parts.append(b"}}" if names else b',"q":{}}')
    rows = np.empty((n, len(parts)), dtype=object)
    for c, part in enumerate(parts):
        rows[:, c] = part if isinstance(part, bytes) else np.array(part, dtype=object)
    return [b'{"v":1,"readings":[' + b"".join(rows[lo:lo + batch].ravel().tolist())[1:] + b"]}"
            for lo in range(0, n, batch)]


def fragments(values: np.ndarray) -> list[bytes]:
    """Each element as orjson prints it (one C call for the whole column)."""
    try:
        text = orjson.dumps(np.ascontiguousarray(values), option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:  # dtypes orjson cannot take natively
        text = orjson.dumps(np.asarray(values).tolist())
    return text[1:-1].split(b",")


def _encode_with_orjson(sample: MeterSample, names: list[str], ts: list[int], batch: int) -> list[bytes]:
    columns = [sample.quantities[k].tolist() for k in names]
    seqs = sample.seq.tolist()
    readings = [{"dev": d, "ts": t, "seq": s, "q": dict(zip(names, vals, strict=True))}
                for d, t, s, *vals in zip(sample.devices, ts, seqs, *columns, strict=True)]
    return [orjson.dumps({"v": 1, "readings": readings[lo:lo + batch]}) for lo in range(0, len(readings), batch)]
