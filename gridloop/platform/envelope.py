"""Decode and check telemetry and event envelopes, reading by reading.

One bad reading is rejected with its reason; the good readings beside it are kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from typing import NamedTuple

import orjson

EVENT_TYPES = frozenset(
    {
        "power_outage", "power_restored", "voltage_sag", "voltage_swell", "last_gasp",
        "tamper", "comm_lost", "comm_restored",
    }
)


class Reading(NamedTuple):
    """One meter's values at one measurement instant (a tuple: ingest makes one per reading, cheaply)."""

    dev: str
    ts: int  # epoch ms UTC
    seq: int | None
    q: dict[str, float]


@dataclass(frozen=True)
class Event:
    """One event raised by a device."""

    dev: str
    ts: int
    type: str
    severity: str
    data: dict


@dataclass
class Decoded:
    """What survives of one MQTT payload, and why the rest did not."""

    readings: list[Reading] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)


# owner_of(device) -> tenant that owns it, or None if unknown
OwnerLookup = Callable[[str], "str | None"]


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _check_owner(dev: object, tenant: str, owner_of: OwnerLookup) -> str | None:
    if not isinstance(dev, str):
        return "field 'dev' missing or not a string"
    owner = owner_of(dev)
    if owner is None:
        return f"unknown device {dev!r}"
    if owner != tenant:
        return f"device {dev!r} does not belong to tenant {tenant!r}"
    return None


def _payload_items(payload: bytes, key: str, decoded: Decoded) -> list | None:
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        decoded.rejections.append(f"not valid JSON: {exc}")
        return None
    if not isinstance(doc, dict) or doc.get("v") != 1 or not isinstance(doc.get(key), list):
        decoded.rejections.append(f"not a v1 envelope with a '{key}' list")
        return None
    return doc[key]


_FLOAT = {float}
_new_reading = partial(tuple.__new__, Reading)  # Reading from a 4-tuple without a Python frame per reading
_INT = {int}
_SEQ_TYPES = {int, type(None)}


def _fast_readings(items: list, tenant: str, owner_of: OwnerLookup) -> list[Reading] | None:
    """All readings of a clean envelope, checked column by column in C loops; None if any needs a closer look."""
    if set(map(type, items)) != {dict}:
        return None
    try:
        devs = [r["dev"] for r in items]
        tss = [r["ts"] for r in items]
        qs = [r["q"] for r in items]
    except KeyError:
        return None
    seqs = [r.get("seq") for r in items]
    if (set(map(type, devs)) != {str} or set(map(type, tss)) != _INT or min(tss) < 0
            or not set(map(type, seqs)) <= _SEQ_TYPES or set(map(type, qs)) != {dict} or not all(qs)
            or set(map(type, chain.from_iterable(map(dict.values, qs)))) != _FLOAT):
        return None
    if set(map(owner_of, set(devs))) != {tenant}:
        return None
    return list(map(_new_reading, zip(devs, tss, seqs, qs, strict=True)))  # orjson floats are always finite


def decode_telemetry(payload: bytes, tenant: str, owner_of: OwnerLookup) -> Decoded:
    """Split a telemetry envelope into valid readings and per-reading rejection reasons."""
    decoded = Decoded()
    items = _payload_items(payload, "readings", decoded)
    if not items:
        return decoded
    if (fast := _fast_readings(items, tenant, owner_of)) is not None:
        decoded.readings = fast
        return decoded
    owners: dict[str, str | None] = {}  # one registry look-up per device and envelope
    append = decoded.readings.append
    for i, r in enumerate(items):
        # fast path: a well-formed reading of a known device of this tenant with float values
        if type(r) is dict and type(dev := r.get("dev")) is str:
            ts, seq, q = r.get("ts"), r.get("seq"), r.get("q")
            if dev not in owners:
                owners[dev] = owner_of(dev)
            if (owners[dev] == tenant and type(ts) is int and ts >= 0 and (seq is None or type(seq) is int)
                    and type(q) is dict and q and all(type(v) is float for v in q.values())):
                append(Reading(dev, ts, seq, q))  # orjson floats are always finite
                continue
        if not isinstance(r, dict):
            decoded.rejections.append(f"readings[{i}]: not an object")
            continue
        if (why := _check_owner(r.get("dev"), tenant, owner_of)) is not None:
            decoded.rejections.append(f"readings[{i}]: {why}")
            continue
        ts, seq, q = r.get("ts"), r.get("seq"), r.get("q")
        if not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
            decoded.rejections.append(f"readings[{i}]: field 'ts' missing or not epoch milliseconds")
        elif seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)):
            decoded.rejections.append(f"readings[{i}]: field 'seq' is not an integer")
        elif not isinstance(q, dict) or not q:
            decoded.rejections.append(f"readings[{i}]: field 'q' missing or empty")
        elif bad := [k for k, v in q.items() if not _is_number(v)]:
            decoded.rejections.append(f"readings[{i}]: non-numeric value for {', '.join(bad)}")
        else:
            decoded.readings.append(Reading(r["dev"], ts, seq, {k: float(v) for k, v in q.items()}))
    return decoded


def decode_events(payload: bytes, tenant: str, owner_of: OwnerLookup) -> Decoded:
    """Split an event envelope into valid events and per-event rejection reasons."""
    decoded = Decoded()
    items = _payload_items(payload, "events", decoded)
    for i, e in enumerate(items or ()):
        if not isinstance(e, dict):
            decoded.rejections.append(f"events[{i}]: not an object")
            continue
        if (why := _check_owner(e.get("dev"), tenant, owner_of)) is not None:
            decoded.rejections.append(f"events[{i}]: {why}")
            continue
        ts, kind = e.get("ts"), e.get("type")
        if not isinstance(ts, int) or isinstance(ts, bool):
            decoded.rejections.append(f"events[{i}]: field 'ts' missing or not epoch milliseconds")
        elif not isinstance(kind, str) or not kind:
            decoded.rejections.append(f"events[{i}]: field 'type' missing")
        else:
            data = e.get("data") if isinstance(e.get("data"), dict) else {}
            decoded.events.append(Event(e["dev"], ts, kind, str(e.get("severity", "info")), data))
    return decoded
