"""Platform administration: health and tenant creation (tag ``platform``)."""

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException

from gridloop.contract import rest as schemas
from gridloop.platform.api.deps import Ctx, bearer

router = APIRouter(tags=["platform"])


@router.get("/api/v1/health", response_model=schemas.Health)
def health(ctx: Ctx) -> schemas.Health:
    """Always answers (no auth, no store access): ok, or degraded while ingest waits for the store."""
    degraded = any(c.degraded for c in ctx.ingest_counters())
    return schemas.Health(status="degraded" if degraded else "ok", store_available=not degraded)


@router.post("/api/v1/tenants", response_model=schemas.TenantCreated, status_code=201)
def create_tenant(ctx: Ctx, body: schemas.TenantIn, authorization: Annotated[str | None, Header()] = None):
    """Create a tenant (needs the platform's admin key); answers the tenant's API key once."""
    if ctx.admin_key is None or not hmac.compare_digest(bearer(authorization), ctx.admin_key):
        raise HTTPException(403, "creating tenants needs the platform admin key")
    try:
        key = ctx.store.create_tenant(body.name)
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    return schemas.TenantCreated(tenant=body.name, api_key=key)
