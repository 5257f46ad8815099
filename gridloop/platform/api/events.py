"""Events of one device (tag ``data``)."""

from typing import Annotated

from fastapi import APIRouter, Query

from gridloop.contract import EventType
from gridloop.contract import rest as schemas
from gridloop.platform.api.deps import Ctx, Tenant, own_device, span

MAX_EVENTS = 10_000
# one device has at most one event of each type at one ts (the stores' key): a page holds more than that, so a page
# cut before its last timestamp always makes progress
MIN_EVENT_PAGE = len(EventType) + 1

router = APIRouter(tags=["data"])


@router.get("/api/v1/devices/{device}/events", response_model=schemas.Events)
def events(
    ctx: Ctx, t: Tenant, device: str, start: str | None = None, end: str | None = None, type: str | None = None,
    limit: Annotated[int, Query(ge=MIN_EVENT_PAGE, le=MAX_EVENTS)] = MAX_EVENTS,
) -> schemas.Events:
    """Events by time; never cut short silently: when more may follow, ``next_start`` says where to ask again."""
    own_device(ctx, t, device)
    lo, hi = span(start, end)
    rows = ctx.store.query_events(t, device, lo, hi, type, limit + 1)
    next_start = None
    if len(rows) > limit:  # cut before the first timestamp that did not fit whole
        next_start = rows[limit].ts
        rows = [e for e in rows[:limit] if e.ts < next_start]
    return schemas.Events(
        device=device, next_start=next_start,
        events=[schemas.EventOut(ts=e.ts, type=e.type, severity=e.severity, data=e.data) for e in rows],
    )
