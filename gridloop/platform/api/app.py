"""The platform's REST API (contract section 6), built from one router per resource; every path sees only the
caller's tenant."""

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from gridloop.platform.api import admin, aggregates, assets, commands, completeness, devices, events, metrics, readings
from gridloop.platform.api.deps import ApiContext
from gridloop.platform.api.links import with_links
from gridloop.platform.api.unavailable import answer_outages_with_503
from gridloop.platform.cache import QueryCache
from gridloop.platform.commands import CommandDispatcher
from gridloop.platform.ingest import IngestCounters
from gridloop.platform.rollups import RollupBucket
from gridloop.platform.store.base import Store

# in this order: the OpenAPI document lists the paths as they are added
ROUTERS = (admin, metrics, devices, assets, readings, aggregates, events, completeness, commands)


def create_app(
    store: Store,
    dispatcher: CommandDispatcher | None,
    ingest_counters: Callable[[], list[IngestCounters]] = list,
    admin_key: str | None = None,
    cache_max_age_s: float = 0.0,
    instance: str | None = None,
) -> FastAPI:
    """Build the API around a store; the dispatcher is None for a read-only API.

    Stateless but for two per-process things, so any replica answers alike: ``cache_max_age_s`` > 0 answers
    aggregate queries from a cache never older than that (QueryCache; the answer's ``as_of`` says how old),
    and /metrics reports this process's own ingest counters (labelled with ``instance``, this replica's name).
    """
    cache: QueryCache[list[RollupBucket]] = QueryCache(cache_max_age_s)
    app = FastAPI(
        title="gridloop metering platform",
        version="1",
        description="Device registry, readings, events and commands of one tenant per API key.",
    )
    app.state.api = ApiContext(store, dispatcher, cache, ingest_counters, admin_key, instance)
    app.state.query_cache = cache
    app.router.on_shutdown.append(cache.stop)
    app.add_exception_handler(RequestValidationError, invalid_request)
    answer_outages_with_503(app)  # a store outage or a lost write lock: 503 + Retry-After, never a bare 500
    for module in ROUTERS:
        app.include_router(module.router)
    with_links(app)  # OpenAPI links: create -> read -> change (clients, stateful fuzzing)
    return app


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": jsonable_errors(exc)})


def jsonable_errors(exc: RequestValidationError) -> list[dict]:
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
