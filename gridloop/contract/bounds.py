"""Bounds on every field that crosses the wire, so that anything outside is rejected before a store sees it.

Timestamps are epoch milliseconds within [TS_MIN_MS, TS_MAX_MS): int64-safe and wide enough for simulated years
(scenario clocks are arbitrary, so the window cannot be tied to the platform's own clock). Sequence numbers and
ids stay below 2^53 so that every JSON reader (JavaScript included) holds them exactly.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from gridloop.contract.topics import NAME

TS_MIN_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
TS_MAX_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
SEQ_MAX = 2**53
VALUE_LIMIT = 1e15  # |value| of any quantity: far above any register, finite sums of a bucket stay finite
MAX_READINGS_PER_ENVELOPE = 10_000
MAX_QUANTITIES_PER_READING = 64
MAX_EVENTS_PER_ENVELOPE = 1_000
MAX_EVENT_DATA_KEYS = 16
MAX_TEXT = 256  # characters of a text field (event data values, command detail is MAX_DETAIL)
MAX_DETAIL = 1_024
MAX_PAYLOAD_BYTES = 2 * 1024 * 1024  # one MQTT message; the broker's message_size_limit matches it
DURATION_MAX_S = 7 * 86_400  # a command's duration or expiry horizon

DeviceId = Annotated[str, msgspec.Meta(pattern=NAME.pattern)]
Timestamp = Annotated[int, msgspec.Meta(ge=TS_MIN_MS, lt=TS_MAX_MS, description="epoch ms UTC")]
Seq = Annotated[int, msgspec.Meta(ge=0, le=SEQ_MAX)]
Value = Annotated[float, msgspec.Meta(ge=-VALUE_LIMIT, le=VALUE_LIMIT)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Scalar = Text | Annotated[int, msgspec.Meta(ge=-SEQ_MAX, le=SEQ_MAX)] | Value | bool | None
