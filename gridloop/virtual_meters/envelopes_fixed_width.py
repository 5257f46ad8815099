"""Telemetry envelopes as fixed-width rows: numpy fills one character column at a time, fastest for big samples.

Parses to exactly the readings of :func:`gridloop.virtual_meters.envelopes.encode_envelopes_exact`, a few % larger.
"""

from __future__ import annotations

import numpy as np

from gridloop.virtual_meters.electricity import MeterSample
from gridloop.virtual_meters.envelopes import SAFE_JOINED, SAFE_NAMES, encode_envelopes_exact, fragments, split_finite

_SPACE = 32
_MAX_DECIMALS = 6
_EXACT_LIMIT = 2.0**49  # integers below this divide by 10 exactly enough in float64 for digit extraction
_POWERS = 10.0 ** np.arange(17)


def encode_envelopes(sample: MeterSample, batch: int = 500) -> list[bytes]:
    """Telemetry envelopes (docs/contract.md, section 2) of at most ``batch`` readings each, as bytes, fastest path.

    Every reading is one row of a fixed-width byte matrix filled by numpy one character column at a time
    (numbers right-aligned, padded with JSON whitespace), so an envelope is one slice of one buffer.
    Parses to exactly the readings of :func:`encode_envelopes_exact` (numbers printed with the fewest
    decimals, up to 6, that give back the same float; others via orjson) and is a few % larger.
    """
    groups = split_finite(sample)
    if len(groups) > 1:
        return [env for g in groups for env in encode_envelopes(g, batch)]
    sample = groups[0]  # NaN columns that every meter lacks are dropped too, not sent as null
    names = list(sample.quantities)
    n = len(sample.devices)
    if n == 0:
        return []
    joined = ",".join(sample.devices)
    if (not SAFE_JOINED.fullmatch(joined) or joined.count(",") != n - 1
            or not SAFE_NAMES.fullmatch("".join(names))):
        return encode_envelopes_exact(sample, batch)
    meter_ts = getattr(sample, "meter_ts_ms", None)
    segments: list[bytes | list[np.ndarray]] = [b'{"dev":"', _id_columns(joined, n), b',"ts":']
    segments.append(str(int(sample.ts_ms)).encode() if meter_ts is None else _number_columns(np.asarray(meter_ts)))
    segments += [b',"seq":', _number_columns(np.asarray(sample.seq))]
    for j, name in enumerate(names):
        lead = ',"q":{' if j == 0 else ","
        segments += [f'{lead}"{name}":'.encode(), _number_columns(np.asarray(sample.quantities[name]))]
    segments.append(b"}}," if names else b',"q":{}},')
    template = bytearray()
    variable: list[tuple[int, np.ndarray]] = []
    for seg in segments:
        if isinstance(seg, bytes):
            template += seg
        else:
            variable += [(len(template) + i, col) for i, col in enumerate(seg)]
            template += b" " * len(seg)
    rows = np.empty((n, len(template)), dtype=np.uint8)
    rows[:] = np.frombuffer(bytes(template), dtype=np.uint8)  # constant text: one wide copy per row
    for offset, col in variable:  # one strided 1-D write per character column
        rows[:, offset] = col
    flat = memoryview(rows).cast("B")
    width = len(template)
    return [b"".join((b'{"v":1,"readings":[', flat[lo * width:min(lo + batch, n) * width - 1], b"]}"))
            for lo in range(0, n, batch)]


_ID_CACHE: dict[str, list[np.ndarray]] = {}


def _id_columns(joined: str, n: int) -> list[np.ndarray]:
    """Device ids (``joined`` by commas) with their closing quote, left-aligned, space-padded, as character columns.

    Banks pass the same ids every sample, so the columns are cached by the joined ids.
    """
    cols = _ID_CACHE.get(joined)
    if cols is not None:
        return cols
    raw = np.frombuffer(joined.encode(), dtype=np.uint8)
    ends = np.append(np.flatnonzero(raw == ord(",")), raw.size)
    starts = np.append(0, ends[:-1] + 1)
    lengths = ends - starts
    padded = np.append(raw, np.uint8(_SPACE))  # index raw.size reads a space
    cols = []
    for j in range(int(lengths.max(initial=0)) + 1):
        c = padded[np.where(j < lengths, starts + j, raw.size)]
        c[lengths == j] = ord('"')
        cols.append(c)
    if len(_ID_CACHE) >= 8:
        _ID_CACHE.clear()
    _ID_CACHE[joined] = cols
    return cols


def _decimals_for(x: np.ndarray) -> int | None:
    """Fewest decimals (1..6) whose rounding gives back every value exactly (and stays exact), or None."""
    top = float(np.abs(x).max(initial=0.0))
    for d in range(1, _MAX_DECIMALS + 1):
        if top * 10.0**d >= _EXACT_LIMIT:
            return None
        if np.array_equal(np.round(x, d), x):
            return d
    return None


def _number_columns(values: np.ndarray) -> list[np.ndarray]:
    """Each number as right-aligned ASCII, returned as fixed-width character columns (uint8, one per position)."""
    x = np.asarray(values)
    if x.dtype.kind in "iu" and x.size and int(np.abs(x).max()) < _EXACT_LIMIT:
        d = 0
        a = np.abs(x).astype(np.float64)
    elif x.dtype == np.float64 and (d := _decimals_for(x)) is not None:
        a = np.rint(np.abs(x) * 10.0**d)  # the value in units of its last decimal, integer-valued float
    else:
        return _text_columns(fragments(x))
    neg = (x < 0) & (a > 0)
    fewest, most = (d + 1 + int(np.searchsorted(_POWERS[d + 1:], v, side="right")) for v in (a.min(), a.max()))
    # digits each value shows (at least "0" before the point)
    shown = np.full(a.size, most) if fewest == most else d + 1 + np.searchsorted(_POWERS[d + 1:], a, side="right")
    signed = bool(neg.any())
    cols: list[np.ndarray] = []
    rest = a
    for i in range(most + signed):  # from the right: digit i, the point after d digits, then the sign
        if d and i == d:
            cols.append(np.full(a.size, ord("."), dtype=np.uint8))
        q = np.floor(rest / 10.0)
        char = 48.0 + (rest - 10.0 * q)
        if i >= fewest:  # leading positions: "0" -> " " (-16), or "-" (-3) right before the first digit
            blank = i >= shown
            char -= 16.0 * blank - 13.0 * (blank & neg & (i == shown))
        cols.append(char.astype(np.uint8))
        rest = q
    return cols[::-1]


def _text_columns(frags: list[bytes]) -> list[np.ndarray]:
    """orjson-printed values, left-aligned and space-padded, for values without a short exact decimal form."""
    a = np.array(frags, dtype=bytes)
    m = a.view(np.uint8).reshape(len(frags), a.dtype.itemsize)
    return [np.where(m[:, j] == 0, np.uint8(_SPACE), m[:, j]) for j in range(m.shape[1])]
