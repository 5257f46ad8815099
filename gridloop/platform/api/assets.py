"""Assets (people, houses, locations, substations, feeders) that devices are assigned to (tag ``registry``)."""

from fastapi import APIRouter, HTTPException, Request, Response

from gridloop.contract import rest as schemas
from gridloop.platform.api.deps import LIST_PAGE, After, Ctx, ListLimit, Tenant, paged
from gridloop.platform.store.base import AssetRecord, DeviceRecord

router = APIRouter(tags=["registry"])


def asset_out(a: AssetRecord | None, devices: list[DeviceRecord]) -> schemas.Asset:
    assert a is not None
    return schemas.Asset(id=a.id, kind=a.kind, name=a.name, parent=a.parent,
                         devices=[d.id for d in devices if d.asset == a.id])


@router.get("/api/v1/assets", response_model=list[schemas.Asset])
def list_assets(ctx: Ctx, t: Tenant, request: Request, response: Response, after: After = None,
                limit: ListLimit = LIST_PAGE) -> list[schemas.Asset]:
    """The tenant's assets by id, a page at a time (``Link: <…>; rel="next"`` when more follow)."""
    page = paged(lambda a, n: ctx.store.list_assets(t, a, n), after, limit, request, response)
    devices = ctx.store.list_devices(t) if page else []
    return [asset_out(a, devices) for a in page]


@router.post("/api/v1/assets", response_model=schemas.Asset, status_code=201)
def create_asset(ctx: Ctx, t: Tenant, body: schemas.AssetIn) -> schemas.Asset:
    store = ctx.store
    if body.parent is not None and store.get_asset(t, body.parent) is None:
        raise HTTPException(422, f"parent asset {body.parent!r} does not exist")
    store.put_asset(AssetRecord(tenant=t, id=body.id, kind=body.kind, name=body.name, parent=body.parent))
    return asset_out(store.get_asset(t, body.id), [])


@router.get("/api/v1/assets/{asset}", response_model=schemas.Asset)
def get_asset(ctx: Ctx, t: Tenant, asset: str) -> schemas.Asset:
    record = ctx.store.get_asset(t, asset)
    if record is None:
        raise HTTPException(404, f"no asset {asset!r}")
    return asset_out(record, ctx.store.list_devices(t))
