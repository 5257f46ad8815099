"""Telemetry envelopes: what meters, gateways and DIAs publish on ``…/telemetry/{device}``.

Decoding validates every field against the contract's bounds; a bad reading is rejected with its reason and
the good readings beside it are kept.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple

import msgspec

from gridloop.contract.bounds import (
    MAX_PAYLOAD_BYTES,
    MAX_QUANTITIES_PER_READING,
    MAX_READINGS_PER_ENVELOPE,
    SEQ_MAX,
    DeviceId,
    Seq,
    Timestamp,
    Value,
)
from gridloop.contract.quantities import Quantity

ENVELOPE_VERSION = 1
QuantityName = Literal[tuple(q.value for q in Quantity)]  # type: ignore[valid-type]  # plain str keys, checked


class Reading(msgspec.Struct, frozen=True, omit_defaults=True):
    """One meter's values at one measurement instant (``ts``, not the send time)."""

    dev: DeviceId
    ts: Timestamp
    q: Annotated[dict[QuantityName, Value], msgspec.Meta(min_length=1, max_length=MAX_QUANTITIES_PER_READING)]
    seq: Seq | None = None


EnvelopeId = Annotated[int, msgspec.Meta(ge=0, le=SEQ_MAX, description="the publisher's envelope number, "
                                                                        "acknowledged on acks/{publisher}")]


class TelemetryEnvelope(msgspec.Struct, omit_defaults=True):
    v: Literal[1]
    readings: Annotated[list[Reading], msgspec.Meta(max_length=MAX_READINGS_PER_ENVELOPE)]
    id: EnvelopeId | None = None


class _LooseEnvelope(msgspec.Struct):
    v: Literal[1]
    readings: Annotated[list[msgspec.Raw], msgspec.Meta(max_length=MAX_READINGS_PER_ENVELOPE)]
    id: EnvelopeId | None = None


_envelope = msgspec.json.Decoder(TelemetryEnvelope)
_loose = msgspec.json.Decoder(_LooseEnvelope)
_reading = msgspec.json.Decoder(Reading)
_encoder = msgspec.json.Encoder()


class Rejected(ValueError):
    """A whole payload is unusable (not JSON, not a v1 envelope, too large)."""


class DecodedReadings(NamedTuple):
    readings: list[Reading]
    reasons: list[str]  # one per rejected reading: ``readings[i]: why``
    positions: list[int] | None  # index in the envelope of each valid reading; None: all were valid
    envelope_id: int | None = None


def check_payload(payload: bytes, decoder: msgspec.json.Decoder, what: str) -> Any:
    """The payload decoded as a loose envelope; Rejected naming why the whole payload is unusable."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Rejected(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        return decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise Rejected(f"not a v1 {what} envelope: {exc}") from None
    except msgspec.DecodeError as exc:
        raise Rejected(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise Rejected("nested too deeply") from None


def decode_readings(payload: bytes) -> DecodedReadings:
    """The valid readings of a telemetry payload and one reason per rejected reading.

    Raises Rejected when the payload as a whole is not a telemetry envelope.
    """
    if len(payload) <= MAX_PAYLOAD_BYTES:
        try:
            envelope = _envelope.decode(payload)
            return DecodedReadings(envelope.readings, [], None, envelope.id)
        except (msgspec.DecodeError, RecursionError):
            pass
    loose = check_payload(payload, _loose, "telemetry")
    readings: list[Reading] = []
    reasons: list[str] = []
    positions: list[int] = []
    for i, raw in enumerate(loose.readings):
        try:
            readings.append(_reading.decode(raw))
            positions.append(i)
        except (msgspec.DecodeError, RecursionError) as exc:
            reasons.append(f"readings[{i}]: {exc}")
    return DecodedReadings(readings, reasons, positions, loose.id)


def encode_envelope(readings: list[Reading]) -> bytes:
    """A telemetry payload (the DIA's column-wise encoders produce the same JSON faster)."""
    return _encoder.encode(TelemetryEnvelope(v=ENVELOPE_VERSION, readings=readings))
