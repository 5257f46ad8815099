"""What every router of the API shares: the app's context, the caller's tenant and the checks of path and span."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request, Response

from gridloop.platform.cache import QueryCache
from gridloop.platform.commands import CommandDispatcher
from gridloop.platform.ingest import IngestCounters
from gridloop.platform.rollups import RollupBucket
from gridloop.platform.store.base import DeviceRecord, Store
from gridloop.platform.timeparse import to_epoch_ms

MIN_MS, MAX_MS = -62_135_596_800_000, 253_402_300_799_999  # 0001-01-01 .. 9999-12-31T23:59:59.999Z


@dataclass(frozen=True)
class ApiContext:
    """The store and the per-process parts one app is built around (``app.state.api``)."""

    store: Store
    dispatcher: CommandDispatcher | None  # None: a read-only API
    cache: QueryCache[list[RollupBucket]]
    ingest_counters: Callable[[], list[IngestCounters]]
    admin_key: str | None
    instance: str | None


async def api_context(request: Request) -> ApiContext:
    return request.app.state.api


Ctx = Annotated[ApiContext, Depends(api_context)]


def bearer(authorization: str | None) -> str:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "missing bearer API key", headers={"WWW-Authenticate": "Bearer"})
    return authorization.removeprefix("Bearer ").strip()


def tenant(ctx: Ctx, authorization: Annotated[str | None, Header()] = None) -> str:
    name = ctx.store.tenant_of_key(bearer(authorization))
    if name is None:
        raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    return name


Tenant = Annotated[str, Depends(tenant)]


def own_device(ctx: ApiContext, t: str, device: str) -> DeviceRecord:
    """The tenant's device, or 404."""
    record = ctx.store.get_device(t, device)
    if record is None:
        raise HTTPException(404, f"no device {device!r}")
    return record


def span(start: str | None, end: str | None) -> tuple[int | None, int | None]:
    """Query bounds (ISO 8601 or epoch ms) as epoch ms; 422 if unreadable or outside years 1..9999."""
    try:
        lo, hi = to_epoch_ms(start, "start"), to_epoch_ms(end, "end")
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    for name, value in (("start", lo), ("end", hi)):
        if value is not None and not MIN_MS <= value <= MAX_MS:
            raise HTTPException(422, f"{name} is outside years 1..9999")  # would overflow the stores' integers
    return lo, hi


LIST_PAGE, LIST_MAX = 1000, 10_000  # registry lists: default and largest page
ListLimit = Annotated[int, Query(ge=1, le=LIST_MAX, description="largest page; a Link rel=next header follows")]
After = Annotated[str | None, Query(max_length=200, description="the last id of the previous page")]


def next_page(request: Request, response: Response, after: str) -> None:
    """More follow: say where, as an RFC 8288 ``Link: <path?after=…>; rel="next"`` header (never cut short silently)."""
    url = request.url.include_query_params(after=after)
    response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'


def paged(fetch, after: str | None, limit: int, request: Request, response: Response) -> list:
    """One page of a registry list by id: asks for one more than ``limit`` to know whether more follow."""
    page = fetch(after, limit + 1)
    if len(page) > limit:
        page = page[:limit]
        next_page(request, response, page[-1].id)
    return page


def required_span(start: str, end: str) -> tuple[int, int]:
    lo, hi = span(start, end)
    if lo is None or hi is None:
        raise HTTPException(422, "start and end are required (ISO 8601 or epoch ms)")
    return lo, hi
