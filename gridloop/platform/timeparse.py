"""Query-time parameters: ISO 8601 or epoch milliseconds, both accepted as the contract says."""

from __future__ import annotations

from datetime import UTC, datetime


def to_epoch_ms(value: str | None, field: str) -> int | None:
    """Epoch ms from '1767225610000' or '2026-01-01T00:00:10Z'; ValueError names the field."""
    if value is None or value == "":
        return None
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field}: {value!r} is neither ISO 8601 nor epoch milliseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
