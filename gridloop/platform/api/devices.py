"""The device registry of the caller's tenant (tag ``registry``)."""

from fastapi import APIRouter, HTTPException, Request, Response

from gridloop.contract import rest as schemas
from gridloop.platform.api.deps import LIST_PAGE, After, Ctx, ListLimit, Tenant, own_device, paged
from gridloop.platform.store.base import DeviceRecord

router = APIRouter(tags=["registry"])


def device_out(d: DeviceRecord) -> schemas.Device:
    return schemas.Device(id=d.id, type=d.type, phases=d.phases, gateway=d.gateway, asset=d.asset, meta=d.meta,
                          status=d.status)


@router.get("/api/v1/devices", response_model=list[schemas.Device])
def list_devices(ctx: Ctx, t: Tenant, request: Request, response: Response, after: After = None,
                 limit: ListLimit = LIST_PAGE) -> list[schemas.Device]:
    """The tenant's devices by id, a page at a time (``Link: <…>; rel="next"`` when more follow)."""
    page = paged(lambda a, n: ctx.store.list_devices(t, a, n), after, limit, request, response)
    return [device_out(d) for d in page]


@router.post("/api/v1/devices", response_model=schemas.DevicesCreated, status_code=201)
def create_devices(ctx: Ctx, t: Tenant, body: schemas.DeviceIn | list[schemas.DeviceIn]) -> schemas.DevicesCreated:
    """Provision one device, or many at once (a list)."""
    items = body if isinstance(body, list) else [body]
    records = [
        DeviceRecord(tenant=t, id=d.id, type=d.type, phases=d.phases, gateway=d.gateway, asset=d.asset,
                     meta=dict(d.meta))
        for d in items
    ]
    ctx.store.put_devices(records)
    return schemas.DevicesCreated(created=len(records))


@router.get("/api/v1/devices/{device}", response_model=schemas.Device)
def get_device(ctx: Ctx, t: Tenant, device: str) -> schemas.Device:
    return device_out(own_device(ctx, t, device))


@router.patch("/api/v1/devices/{device}", response_model=schemas.Device)
def patch_device(ctx: Ctx, t: Tenant, device: str, body: schemas.DevicePatch) -> schemas.Device:
    record = own_device(ctx, t, device)
    values = body.model_dump(exclude_unset=True)
    if nulls := [k for k in ("type", "phases", "meta") if k in values and values[k] is None]:
        raise HTTPException(422, f"{', '.join(nulls)} cannot be null (only gateway and asset can be cleared)")
    for key, value in values.items():
        setattr(record, key, value)
    ctx.store.put_devices([record])
    return device_out(record)


@router.delete("/api/v1/devices/{device}", status_code=204)
def delete_device(ctx: Ctx, t: Tenant, device: str) -> None:
    if not ctx.store.delete_device(t, device):
        raise HTTPException(404, f"no device {device!r}")
