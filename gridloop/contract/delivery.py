"""End-to-end delivery: a publisher numbers its envelopes, the platform acknowledges each once it is stored.

A broker's PUBACK only says the broker has the message; a broker that crashes before the platform stored it
loses it. So a publisher (DIA, gateway) puts an ``id`` in every envelope and keeps the envelope until the
platform's ``DeliveryAck`` on ``gridloop/v1/{tenant}/acks/{publisher}`` names it; it resends what stays
unacknowledged. The store is idempotent on (device, ts), so a resend is never counted twice. An envelope the
platform rejects for good (it breaks the contract, or the store refuses it) is acknowledged too: sending it again
would not help, and its reason is kept among the rejected messages.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from gridloop.contract.bounds import MAX_READINGS_PER_ENVELOPE, SEQ_MAX

ENVELOPE_START = b'{"v":1,'  # how every gridloop encoder starts an envelope


class DeliveryAck(msgspec.Struct):
    v: Literal[1]
    ids: Annotated[list[Annotated[int, msgspec.Meta(ge=0, le=SEQ_MAX)]],
                   msgspec.Meta(max_length=MAX_READINGS_PER_ENVELOPE)]


class _IdOnly(msgspec.Struct):
    id: Annotated[int, msgspec.Meta(ge=0, le=SEQ_MAX)] | None = None


_ack = msgspec.json.Decoder(DeliveryAck)
_id_only = msgspec.json.Decoder(_IdOnly)
_encoder = msgspec.json.Encoder()


def encode_ack(ids: list[int]) -> bytes:
    return _encoder.encode(DeliveryAck(v=1, ids=ids))


def decode_ack(payload: bytes) -> list[int]:
    """The envelope ids a DeliveryAck names; [] for anything that is not one."""
    try:
        return _ack.decode(payload).ids
    except (msgspec.DecodeError, RecursionError):
        return []


def envelope_id(payload: bytes) -> int | None:
    """The ``id`` of an envelope however broken the rest of it is; None if it has none or is not JSON."""
    try:
        return _id_only.decode(payload).id
    except (msgspec.DecodeError, RecursionError):
        return None


def with_id(payload: bytes, number: int) -> bytes:
    """An encoded envelope with its ``id`` put first (cheap: no re-encoding of the readings)."""
    if not payload.startswith(ENVELOPE_START):
        raise ValueError("not an envelope made by a gridloop encoder")
    return b'{"v":1,"id":%d,' % number + payload[len(ENVELOPE_START):]
