"""Event envelopes: what devices raise on ``…/events/{device}`` (EN 50160 voltage events, outages, tamper)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

import msgspec

from gridloop.contract.bounds import (
    MAX_EVENT_DATA_KEYS,
    MAX_EVENTS_PER_ENVELOPE,
    MAX_PAYLOAD_BYTES,
    DeviceId,
    Key,
    Scalar,
    Timestamp,
)
from gridloop.contract.telemetry import ENVELOPE_VERSION, EnvelopeId, check_payload


class EventType(StrEnum):
    POWER_OUTAGE = "power_outage"
    POWER_RESTORED = "power_restored"
    VOLTAGE_SAG = "voltage_sag"
    VOLTAGE_SAG_END = "voltage_sag_end"
    VOLTAGE_SWELL = "voltage_swell"
    VOLTAGE_SWELL_END = "voltage_swell_end"
    LAST_GASP = "last_gasp"
    TAMPER = "tamper"
    COMM_LOST = "comm_lost"
    COMM_RESTORED = "comm_restored"


class Severity(StrEnum):
    INFO = "info"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


EVENT_DESCRIPTIONS: dict[EventType, str] = {
    EventType.POWER_OUTAGE: "the meter lost supply (all phases below 0.05 Un), logged",
    EventType.POWER_RESTORED: "supply is back",
    EventType.VOLTAGE_SAG: "a phase fell below 0.9 Un (EN 50160)",
    EventType.VOLTAGE_SAG_END: "the phase recovered above 0.9 Un plus hysteresis",
    EventType.VOLTAGE_SWELL: "a phase rose above 1.1 Un (EN 50160)",
    EventType.VOLTAGE_SWELL_END: "the phase fell back below 1.1 Un minus hysteresis",
    EventType.LAST_GASP: "pushed on the meter's dying capacitor as supply is lost",
    EventType.TAMPER: "the meter's cover or terminal was opened",
    EventType.COMM_LOST: "the device lost its link",
    EventType.COMM_RESTORED: "the device's link is back",
}


class Event(msgspec.Struct, frozen=True):
    dev: DeviceId
    ts: Timestamp
    type: EventType
    severity: Severity = Severity.INFO
    data: Annotated[dict[Key, Scalar], msgspec.Meta(max_length=MAX_EVENT_DATA_KEYS)] = msgspec.field(
        default_factory=dict)


class EventEnvelope(msgspec.Struct, omit_defaults=True):
    v: Literal[1]
    events: Annotated[list[Event], msgspec.Meta(max_length=MAX_EVENTS_PER_ENVELOPE)]
    id: EnvelopeId | None = None


class _LooseEnvelope(msgspec.Struct):
    v: Literal[1]
    events: Annotated[list[msgspec.Raw], msgspec.Meta(max_length=MAX_EVENTS_PER_ENVELOPE)]
    id: EnvelopeId | None = None


_envelope = msgspec.json.Decoder(EventEnvelope)
_loose = msgspec.json.Decoder(_LooseEnvelope)
_event = msgspec.json.Decoder(Event)
_encoder = msgspec.json.Encoder()


def decode_events(payload: bytes) -> tuple[list[Event], list[str]]:
    """The valid events of an event payload and one reason per rejected event (``events[i]: why``).

    Raises Rejected when the payload as a whole is not an event envelope.
    """
    if len(payload) <= MAX_PAYLOAD_BYTES:
        try:
            return _envelope.decode(payload).events, []
        except (msgspec.DecodeError, RecursionError):
            pass
    loose = check_payload(payload, _loose, "event")
    events: list[Event] = []
    reasons: list[str] = []
    for i, raw in enumerate(loose.events):
        try:
            events.append(_event.decode(raw))
        except (msgspec.DecodeError, RecursionError) as exc:
            reasons.append(f"events[{i}]: {exc}")
    return events, reasons


def encode_events(events: list[Event]) -> bytes:
    return _encoder.encode(EventEnvelope(v=ENVELOPE_VERSION, events=events))
