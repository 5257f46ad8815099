"""Aggregates per clock-aligned interval of one device or of an asset's devices, from rollups (tag ``data``)."""

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, HTTPException

from gridloop.contract import rest as schemas
from gridloop.platform.api.deps import ApiContext, Ctx, Tenant, own_device, required_span
from gridloop.platform.rollups import INTERVALS, RollupBucket, combine, value_of

MAX_BUCKETS = 10_000
Interval = Literal["1m", "5m", "15m", "1h", "1d"]
Agg = Literal["mean", "min", "max", "sum", "last", "count"]

router = APIRouter(tags=["data"])


def aggregates(
    ctx: ApiContext, t: str, devices: list[str], quantity: str, start: str, end: str, interval: str, agg: str
) -> tuple[int, int, int, list[schemas.AggregateBucket]]:
    """From the stored rollups (or the cache): buckets of ``interval`` with start in [start aligned down, end)."""
    lo, hi = required_span(start, end)
    width, resolution = INTERVALS[interval]
    lo -= lo % width
    if hi <= lo:
        raise HTTPException(422, "end must be after start")
    if (n := -(-(hi - lo) // width)) > MAX_BUCKETS:
        raise HTTPException(
            422, f"{n} buckets of {interval} between start and end; at most {MAX_BUCKETS}: use a longer interval"
            " or a shorter span")
    span_lo, span_hi = lo, hi

    def compute() -> list[RollupBucket]:
        stored = ctx.store.query_rollups(t, devices, quantity, resolution, span_lo, span_hi) if devices else []
        return combine(stored, width)

    combined, as_of = ctx.cache.get((t, tuple(devices), quantity, interval, lo, hi), compute)
    out = [
        schemas.AggregateBucket(
            start=b.start, start_iso=datetime.fromtimestamp(b.start / 1000, UTC).isoformat().replace("+00:00", "Z"),
            value=value_of(b, agg), count=b.n)
        for b in combined
    ]
    return lo, hi, as_of, out


@router.get("/api/v1/devices/{device}/aggregates", response_model=schemas.Aggregates)
def device_aggregates(
    ctx: Ctx, t: Tenant, device: str, quantity: str, start: str, end: str, interval: Interval = "15m",
    agg: Agg = "mean",
) -> schemas.Aggregates:
    """Aggregates of one quantity of one device per clock-aligned interval (UTC), from rollups."""
    own_device(ctx, t, device)
    lo, hi, as_of, buckets = aggregates(ctx, t, [device], quantity, start, end, interval, agg)
    return schemas.Aggregates(device=device, devices=[device], quantity=quantity, interval=interval, agg=agg,
                              start=lo, end=hi, as_of=as_of, buckets=buckets)


@router.get("/api/v1/assets/{asset}/aggregates", response_model=schemas.Aggregates)
def asset_aggregates(
    ctx: Ctx, t: Tenant, asset: str, quantity: str, start: str, end: str, interval: Interval = "15m",
    agg: Agg = "mean",
) -> schemas.Aggregates:
    """The same over all devices assigned to the asset: mean = total sum / total count, last = latest value."""
    if ctx.store.get_asset(t, asset) is None:
        raise HTTPException(404, f"no asset {asset!r}")
    devices = [d.id for d in ctx.store.list_devices(t) if d.asset == asset]
    lo, hi, as_of, buckets = aggregates(ctx, t, devices, quantity, start, end, interval, agg)
    return schemas.Aggregates(asset=asset, devices=devices, quantity=quantity, interval=interval, agg=agg,
                              start=lo, end=hi, as_of=as_of, buckets=buckets)
