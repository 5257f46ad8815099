"""Events of one device (tag ``data``)."""

from fastapi import APIRouter

from gridloop.contract import rest as schemas
from gridloop.platform.api.deps import Ctx, Tenant, own_device, span

router = APIRouter(tags=["data"])


@router.get("/api/v1/devices/{device}/events", response_model=schemas.Events)
def events(
    ctx: Ctx, t: Tenant, device: str, start: str | None = None, end: str | None = None, type: str | None = None
) -> schemas.Events:
    own_device(ctx, t, device)
    lo, hi = span(start, end)
    rows = ctx.store.query_events(t, device, lo, hi, type)
    return schemas.Events(
        device=device,
        events=[schemas.EventOut(ts=e.ts, type=e.type, severity=e.severity, data=e.data) for e in rows],
    )
