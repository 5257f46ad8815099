"""Readings expected vs received per device over a span (tag ``data``)."""

from fastapi import APIRouter, HTTPException

from gridloop.contract import rest as schemas
from gridloop.platform.api.deps import Ctx, Tenant, required_span

router = APIRouter(tags=["data"])


@router.get("/api/v1/completeness", response_model=schemas.Completeness)
def completeness(ctx: Ctx, t: Tenant, start: str, end: str) -> schemas.Completeness:
    """Per device with a sampling interval: readings expected in [start, end) vs received."""
    lo, hi = required_span(start, end)
    if hi <= lo:
        raise HTTPException(422, "end must be after start")
    received = ctx.store.readings_per_device(t, lo, hi)
    out = []
    for d in ctx.store.list_devices(t):
        interval_ms = int(float(d.meta.get("interval_s") or 0) * 1000)
        if interval_ms <= 0:
            continue
        expected = -(-hi // interval_ms) - -(-lo // interval_ms)  # sampling instants k*interval in [lo, hi)
        got = received.get(d.id, 0)
        out.append(schemas.DeviceCompleteness(
            device=d.id, expected=expected, received=got, ratio=got / expected if expected else 1.0))
    return schemas.Completeness(start=lo, end=hi, devices=out)
