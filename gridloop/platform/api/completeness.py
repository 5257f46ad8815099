"""Readings expected vs received per device over a span (tag ``data``)."""

import orjson
from fastapi import APIRouter, HTTPException, Response

from gridloop.contract import rest as schemas
from gridloop.platform.api.deps import Ctx, Tenant, required_span
from gridloop.platform.device_interval import interval_ms as _interval_ms

router = APIRouter(tags=["data"])


@router.get("/api/v1/completeness", response_model=schemas.Completeness)
def completeness_response(ctx: Ctx, t: Tenant, start: str, end: str) -> Response:
    """Per device with a sampling interval: readings expected in [start, end) vs received."""
    # the contract's JSON built from plain dicts: no model per device (10,000 devices: 35 ms of 10,000 models)
    return Response(orjson.dumps(completeness_json(ctx, t, start, end)), media_type="application/json")


def completeness_json(ctx: Ctx, t: Tenant, start: str, end: str) -> dict:
    """The fields of ``schemas.Completeness`` (``devices``: those of ``schemas.DeviceCompleteness``), as plain data."""
    lo, hi = required_span(start, end)
    if hi <= lo:
        raise HTTPException(422, "end must be after start")
    received = ctx.store.readings_per_device(t, lo, hi)
    devices = []
    for dev, kind, meta_json in ctx.store.device_metas(t):
        if (interval_ms := _interval_ms(kind, meta_json)) <= 0:
            continue
        expected = -(-hi // interval_ms) - -(-lo // interval_ms)  # sampling instants k*interval in [lo, hi)
        got = received.get(dev, 0)
        devices.append({"device": dev, "expected": expected, "received": got,
                        "ratio": got / expected if expected else 1.0})
    return {"start": lo, "end": hi, "devices": devices}
