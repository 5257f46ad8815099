"""Decode telemetry and event payloads against the contract, then against the registry, reading by reading.

Field types and bounds come from ``gridloop.contract`` (quantity names, timestamp window, finite values, sizes);
this module adds what only the platform knows: which tenant owns each device. One bad reading is rejected
with its reason; the good readings beside it are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

from gridloop.contract import Rejected
from gridloop.contract import events as wire_events
from gridloop.contract import telemetry as wire_telemetry
from gridloop.contract.delivery import envelope_id

if TYPE_CHECKING:
    from gridloop.platform.store.registry_cache import Registration


class Reading(NamedTuple):
    """A validated reading as the stores and rollups take it (a tuple: cheap per reading, read by position)."""

    dev: str
    ts: int  # epoch ms UTC
    seq: int | None
    q: dict[str, float]


@dataclass(frozen=True)
class Event:
    """A validated event as the stores take it (type and severity as their contract strings)."""

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
    envelope_id: int | None = None  # the publisher's number for the envelope, acknowledged once it is stored


# registration(tenant, device): the tenant's device (its gateway) or None (ids are scoped per tenant)
RegisteredLookup = Callable[[str, str], "Registration | None"]
_new_reading = partial(tuple.__new__, Reading)  # Reading from a 4-tuple without a Python frame per reading


def _owned(devs: set[str], tenant: str, publisher: str, registered: RegisteredLookup) -> dict[str, str | None]:
    """device -> why ``publisher`` may not publish for it (None: it may), one registry look-up per device.

    Another tenant's device is as unknown as an absent one. A device registered behind a gateway is published
    for only by that gateway (or itself): another credential of the tenant cannot pre-fill its readings."""
    why: dict[str, str | None] = {}
    for dev in devs:
        found = registered(tenant, dev)
        why[dev] = (f"unknown device {dev!r}" if found is None else
                    None if found.gateway in (None, publisher) or dev == publisher else
                    f"device {dev!r} is registered behind gateway {found.gateway!r}, not {publisher!r}")
    return why


def decode_telemetry(payload: bytes, tenant: str, publisher: str, registered: RegisteredLookup) -> Decoded:
    """Split a telemetry envelope into valid readings and per-reading rejection reasons."""
    decoded = Decoded()
    try:
        readings, decoded.rejections, positions, decoded.envelope_id = wire_telemetry.decode_readings(payload)
    except Rejected as exc:
        decoded.rejections.append(str(exc))
        decoded.envelope_id = envelope_id(payload)
        return decoded
    why = _owned({r.dev for r in readings}, tenant, publisher, registered)
    if not any(why.values()):
        decoded.readings = [_new_reading((r.dev, r.ts, r.seq, r.q)) for r in readings]
        return decoded
    for i, r in zip(positions or range(len(readings)), readings, strict=True):
        if (reason := why[r.dev]) is None:
            decoded.readings.append(Reading(r.dev, r.ts, r.seq, r.q))
        else:
            decoded.rejections.append(f"readings[{i}]: {reason}")
    return decoded


def decode_events(payload: bytes, tenant: str, publisher: str, registered: RegisteredLookup) -> Decoded:
    """Split an event envelope into valid events and per-event rejection reasons."""
    decoded = Decoded()
    decoded.envelope_id = envelope_id(payload)
    try:
        events, decoded.rejections = wire_events.decode_events(payload)
    except Rejected as exc:
        decoded.rejections.append(str(exc))
        return decoded
    why = _owned({e.dev for e in events}, tenant, publisher, registered)
    for e in events:
        if (reason := why[e.dev]) is None:
            decoded.events.append(Event(e.dev, e.ts, e.type.value, e.severity.value, dict(e.data)))
        else:
            decoded.rejections.append(f"events: {reason}")
    return decoded
