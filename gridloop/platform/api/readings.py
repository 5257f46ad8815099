"""Raw readings of one device (tag ``data``)."""

from typing import Annotated

from fastapi import APIRouter, Query

from gridloop.contract import rest as schemas
from gridloop.platform.api.deps import Ctx, Tenant, own_device, span

MAX_READINGS = 100_000

router = APIRouter(tags=["data"])


@router.get("/api/v1/devices/{device}/readings", response_model=schemas.Readings)
def readings(
    ctx: Ctx,
    t: Tenant,
    device: str,
    quantity: str | None = None,
    start: str | None = None,
    end: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_READINGS)] = 10_000,
) -> schemas.Readings:
    """Raw readings, time-ordered; with ``quantity`` only readings that carry it, with only it."""
    own_device(ctx, t, device)
    lo, hi = span(start, end)
    rows = ctx.store.query_readings(t, device, lo, hi, limit if quantity is None else MAX_READINGS)
    out = []
    for r in rows:
        if quantity is None:
            out.append(schemas.ReadingOut(ts=r.ts, seq=r.seq, q=r.q))
        elif quantity in r.q:
            out.append(schemas.ReadingOut(ts=r.ts, seq=r.seq, q={quantity: r.q[quantity]}))
            if len(out) >= limit:
                break
    return schemas.Readings(device=device, readings=out)
