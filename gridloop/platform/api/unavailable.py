"""A store outage or a lost write lock answers 503 with ``Retry-After`` and the reason, never a bare 500."""

from __future__ import annotations

import sqlite3

import pymongo.errors
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gridloop.contract.rest import StoreOutage, Unavailable
from gridloop.platform.ingest import OUTAGE_RETRY_MAX_S, is_store_outage
from gridloop.platform.store.errors import StoreUnavailable

RETRY_AFTER_S = max(1, round(OUTAGE_RETRY_MAX_S))  # ingest retries at least this often too
# the exception types that may be an outage; is_store_outage tells an outage from refused data
MAYBE_OUTAGE = (StoreUnavailable, sqlite3.OperationalError, pymongo.errors.PyMongoError)


async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 for an outage; anything else is raised on (a defect, answered 500 and logged)."""
    if not is_store_outage(exc):
        raise exc
    if isinstance(exc, StoreUnavailable):
        body = Unavailable(detail=str(exc), reason=exc.reason)
    else:  # the driver's own message may name hosts: only its kind goes out
        body = Unavailable(detail=f"the store is unavailable ({type(exc).__name__}); try again",
                           reason=StoreOutage.UNAVAILABLE)
    return JSONResponse(status_code=503, content=body.model_dump(mode="json"),
                        headers={"Retry-After": str(RETRY_AFTER_S)})


def answer_outages_with_503(app: FastAPI) -> None:
    for kind in MAYBE_OUTAGE:
        app.add_exception_handler(kind, store_unavailable)
