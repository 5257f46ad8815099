"""Commands to devices and their status (tag ``commands``)."""

from fastapi import APIRouter, HTTPException

from gridloop.contract import rest as schemas
from gridloop.platform.api.deps import Ctx, Tenant, own_device
from gridloop.platform.commands import now_ms

router = APIRouter(tags=["commands"])


@router.post("/api/v1/devices/{device}/commands", response_model=schemas.CommandAccepted, status_code=202)
def send_command(ctx: Ctx, t: Tenant, device: str, body: schemas.CommandIn) -> schemas.CommandAccepted:
    own_device(ctx, t, device)
    if ctx.dispatcher is None:
        raise HTTPException(503, "this platform instance does not dispatch commands")
    expires = body.expires
    if body.expires_in_s is not None:
        expires = now_ms() + int(body.expires_in_s * 1000)
    record = ctx.dispatcher.submit(t, device, body.name, dict(body.args), expires)
    return schemas.CommandAccepted(id=record.id)


@router.get("/api/v1/commands/{command_id}", response_model=schemas.Command)
def get_command(ctx: Ctx, t: Tenant, command_id: str) -> schemas.Command:
    record = ctx.store.get_command(t, command_id)
    if record is None:
        raise HTTPException(404, f"no command {command_id!r}")
    return schemas.Command(
        id=record.id, device=record.device, name=record.name, args=record.args, ts=record.ts,
        expires=record.expires, status=record.status, detail=record.detail,
        history=[(s, ts) for s, ts in record.history],
    )
