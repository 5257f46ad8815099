"""Raw readings of one device (tag ``data``)."""

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Response

from gridloop.contract import rest as schemas
from gridloop.platform.api.deps import Ctx, Tenant, own_device, span

MAX_READINGS = 100_000
PAGE = 10_000  # rows read from the store at a time
SCAN_BUDGET = 200_000  # rows one request may read while looking for a quantity; past it, a cursor to go on

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
) -> Response:
    """Raw readings, time-ordered; with ``quantity`` only readings that carry it, with only it.

    Never cut short silently: when more readings may follow (``limit`` reached, or the rows read while looking
    for ``quantity`` reached the scan budget), ``next_start`` says where to ask again."""
    # the contract's JSON built from plain data, serialised once: no model per reading (3,600 readings: most of
    # the time of the request)
    return Response(orjson.dumps(readings_json(ctx, t, device, quantity, start, end, limit)),
                    media_type="application/json")


def readings_json(ctx: Ctx, t: Tenant, device: str, quantity: str | None, start: str | None, end: str | None,
                  limit: int) -> dict:
    """The fields of ``schemas.Readings`` (``readings``: those of ``schemas.ReadingOut``), as plain data."""
    own_device(ctx, t, device)
    lo, hi = span(start, end)
    out: list[dict] = []
    scanned, cursor = 0, lo
    while True:
        want = PAGE if quantity is not None else min(PAGE, limit - len(out))
        page = ctx.store.query_readings(t, device, cursor, hi, want)
        scanned += len(page)
        for r in page:
            if quantity is None or quantity in r.q:
                out.append({"ts": r.ts, "seq": r.seq, "q": r.q if quantity is None else {quantity: r.q[quantity]}})
                if len(out) >= limit:
                    return {"device": device, "readings": out, "next_start": r.ts + 1}
        if len(page) < want:
            return {"device": device, "readings": out, "next_start": None}  # the span holds no more
        cursor = page[-1].ts + 1
        if scanned >= SCAN_BUDGET:
            return {"device": device, "readings": out, "next_start": cursor}
