"""Aggregates per clock-aligned interval of one device or of an asset's devices, from rollups (tag ``data``)."""

from datetime import UTC, datetime
from itertools import pairwise
from typing import Literal

from fastapi import APIRouter, HTTPException

from gridloop.contract import rest as schemas
from gridloop.platform.api.deps import ApiContext, Ctx, Tenant, own_device, required_span
from gridloop.platform.calendar_buckets import (
    CALENDAR_INTERVALS,
    UnknownTimeZone,
    bounds,
    fold,
    source_resolution,
    zone,
)
from gridloop.platform.rollups import INTERVALS, RollupBucket, combine, value_of

MAX_BUCKETS = 10_000
Interval = Literal["1m", "5m", "15m", "1h", "1d", "1mo"]
Agg = Literal["mean", "min", "max", "sum", "last", "count"]

router = APIRouter(tags=["data"])


def aggregates(
    ctx: ApiContext, t: str, devices: list[str], quantity: str, start: str, end: str, interval: str, agg: str,
    tz: str | None = None,
) -> tuple[int, int, int, list[schemas.AggregateBucket]]:
    """From the stored rollups (or the cache): buckets of ``interval`` with start in [start aligned down, end)."""
    lo, hi = required_span(start, end)
    if tz is not None or interval not in INTERVALS:
        return calendar_aggregates(ctx, t, devices, quantity, lo, hi, interval, agg, tz)
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
            start=b.start, start_iso=_utc_iso(b.start), value=value_of(b, agg), count=b.n)
        for b in combined
    ]
    return lo, hi, as_of, out


def calendar_aggregates(
    ctx: ApiContext, t: str, devices: list[str], quantity: str, lo: int, hi: int, interval: str, agg: str,
    tz: str | None,
) -> tuple[int, int, int, list[schemas.AggregateBucket]]:
    """Days or months in the time zone ``tz`` (UTC if None), from the coarsest stored rollups their bounds fall on
    (calendar_buckets): a day is 23 h or 25 h long when daylight saving time starts or ends."""
    if interval not in CALENDAR_INTERVALS:
        raise HTTPException(422, f"tz applies to the intervals {', '.join(CALENDAR_INTERVALS)}, not {interval}")
    try:
        where = zone(tz if tz is not None else "UTC")
    except UnknownTimeZone as e:
        raise HTTPException(422, str(e)) from None
    if hi <= lo:
        raise HTTPException(422, "end must be after start")
    try:
        edges = bounds(lo, hi, where, interval, MAX_BUCKETS)
    except (ValueError, OverflowError, OSError) as e:
        raise HTTPException(422, f"{e}: use a shorter span") from None
    resolution = source_resolution(edges)

    def compute() -> list[RollupBucket]:
        stored = ctx.store.query_rollups(t, devices, quantity, resolution, edges[0], edges[-1]) if devices else []
        return fold(stored, edges)

    combined, as_of = ctx.cache.get((t, tuple(devices), quantity, interval, tz, lo, hi), compute)
    ends = dict(pairwise(edges))
    iso = (lambda ms: datetime.fromtimestamp(ms / 1000, where).isoformat()) if tz is not None else _utc_iso
    out = [schemas.AggregateBucket(start=b.start, start_iso=iso(b.start), end=ends[b.start], value=value_of(b, agg),
                                   count=b.n) for b in combined]
    return edges[0], hi, as_of, out


def _utc_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


@router.get("/api/v1/devices/{device}/aggregates", response_model=schemas.Aggregates)
def device_aggregates(
    ctx: Ctx, t: Tenant, device: str, quantity: str, start: str, end: str, interval: Interval = "15m",
    agg: Agg = "mean", tz: str | None = None,
) -> schemas.Aggregates:
    """Aggregates of one quantity of one device per clock-aligned interval (UTC), from rollups; days and months
    (``1d``, ``1mo``) in the IANA time zone ``tz`` if given."""
    own_device(ctx, t, device)
    lo, hi, as_of, buckets = aggregates(ctx, t, [device], quantity, start, end, interval, agg, tz)
    return schemas.Aggregates(device=device, devices=[device], quantity=quantity, interval=interval, tz=tz, agg=agg,
                              start=lo, end=hi, as_of=as_of, buckets=buckets)


@router.get("/api/v1/assets/{asset}/aggregates", response_model=schemas.Aggregates)
def asset_aggregates(
    ctx: Ctx, t: Tenant, asset: str, quantity: str, start: str, end: str, interval: Interval = "15m",
    agg: Agg = "mean", tz: str | None = None,
) -> schemas.Aggregates:
    """The same over all devices assigned to the asset: mean = total sum / total count, last = latest value."""
    if ctx.store.get_asset(t, asset) is None:
        raise HTTPException(404, f"no asset {asset!r}")
    devices = ctx.store.devices_of_asset(t, asset)
    lo, hi, as_of, buckets = aggregates(ctx, t, devices, quantity, start, end, interval, agg, tz)
    return schemas.Aggregates(asset=asset, devices=devices, quantity=quantity, interval=interval, tz=tz, agg=agg,
                              start=lo, end=hi, as_of=as_of, buckets=buckets)
