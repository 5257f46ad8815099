"""A device's own reading interval, from its typed registry meta (``MeterMeta.interval_s``)."""

from __future__ import annotations

from functools import lru_cache

import orjson

from gridloop.contract.devices import MeterMeta, parse_meta


@lru_cache(maxsize=4096)  # a fleet has few distinct metas: parsing each once keeps 10,000 devices fast
def interval_ms(kind: str, meta_json: str) -> int:
    """A meter's sampling interval from its typed meta (its stored JSON text); 0 when it has none (or a store holds
    one the contract would refuse today: such a device is treated as having none, never an error)."""
    try:
        typed = parse_meta(kind, orjson.loads(meta_json))
    except (ValueError, TypeError):
        return 0
    return int(typed.interval_s * 1000) if isinstance(typed, MeterMeta) and typed.interval_s else 0
