"""The platform's REST API (contract section 6): every path sees only the caller's tenant."""


import hmac
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from gridloop.contract import rest as schemas
from gridloop.platform.cache import QueryCache
from gridloop.platform.commands import CommandDispatcher, now_ms
from gridloop.platform.ingest import IngestCounters
from gridloop.platform.rollups import INTERVALS, RollupBucket, combine, value_of
from gridloop.platform.store.base import AssetRecord, DeviceRecord, Store
from gridloop.platform.timeparse import to_epoch_ms

MAX_READINGS = 100_000
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# ingest counter -> (Prometheus type, help); every other field of IngestCounters is a counter too
GAUGES = {"queue_depth": "messages waiting for the worker's writer"}
MAX_BUCKETS = 10_000
MIN_MS, MAX_MS = -62_135_596_800_000, 253_402_300_799_999  # 0001-01-01 .. 9999-12-31T23:59:59.999Z
Interval = Literal["1m", "5m", "15m", "1h", "1d"]
Agg = Literal["mean", "min", "max", "sum", "last", "count"]


def _bearer(authorization: str | None) -> str:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "missing bearer API key", headers={"WWW-Authenticate": "Bearer"})
    return authorization.removeprefix("Bearer ").strip()


def _span(start: str | None, end: str | None) -> tuple[int | None, int | None]:
    try:
        lo, hi = to_epoch_ms(start, "start"), to_epoch_ms(end, "end")
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    for name, value in (("start", lo), ("end", hi)):
        if value is not None and not MIN_MS <= value <= MAX_MS:
            raise HTTPException(422, f"{name} is outside years 1..9999")  # would overflow the stores' integers
    return lo, hi


def _required_span(start: str, end: str) -> tuple[int, int]:
    lo, hi = _span(start, end)
    if lo is None or hi is None:
        raise HTTPException(422, "start and end are required (ISO 8601 or epoch ms)")
    return lo, hi


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
    app.state.query_cache = cache
    app.router.on_shutdown.append(cache.stop)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": jsonable_errors(exc)})

    def tenant(authorization: Annotated[str | None, Header()] = None) -> str:
        name = store.tenant_of_key(_bearer(authorization))
        if name is None:
            raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
        return name

    Tenant = Annotated[str, Depends(tenant)]

    def command_counters() -> dict[str, int]:
        if dispatcher is None:
            return {}
        return {"responses": dispatcher.responses, "resent": dispatcher.resent, "leader": int(dispatcher.leader),
                "disconnects": dispatcher.disconnects}

    def own_device(t: str, device: str) -> DeviceRecord:
        record = store.get_device(t, device)
        if record is None:
            raise HTTPException(404, f"no device {device!r}")
        return record

    @app.get("/api/v1/health", response_model=schemas.Health, tags=["platform"])
    def health() -> schemas.Health:
        return schemas.Health()

    @app.post("/api/v1/tenants", response_model=schemas.TenantCreated, status_code=201, tags=["platform"])
    def create_tenant(body: schemas.TenantIn, authorization: Annotated[str | None, Header()] = None):
        """Create a tenant (needs the platform's admin key); answers the tenant's API key once."""
        if admin_key is None or not hmac.compare_digest(_bearer(authorization), admin_key):
            raise HTTPException(403, "creating tenants needs the platform admin key")
        try:
            key = store.create_tenant(body.name)
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        return schemas.TenantCreated(tenant=body.name, api_key=key)

    def prometheus(t: str) -> PlainTextResponse:
        workers = [asdict(c) for c in ingest_counters()]
        extra = {
            "query_cache_hits": cache.counters.hits, "query_cache_misses": cache.counters.misses,
            "query_cache_refreshes": cache.counters.refreshes, "query_cache_entries": cache.counters.entries,
            **{f"commands_{k}": v for k, v in command_counters().items()},
        }
        text = prometheus_text(t, store.count_readings(t), store.count_rejected(t), workers, extra, instance)
        return PlainTextResponse(text, media_type=PROMETHEUS_TYPE)

    @app.get("/api/v1/metrics", response_model=schemas.Metrics, tags=["platform"],
             responses={200: {"content": {PROMETHEUS_TYPE: {}}}})
    def metrics(t: Tenant, format: Literal["json", "prometheus"] = "json"):
        """Ingest counters (all workers summed) and the tenant's totals; ``format=prometheus``: per worker, as text."""
        if format == "prometheus":
            return prometheus(t)
        totals: dict[str, int] = {}
        for counters in ingest_counters():
            for k, v in asdict(counters).items():
                totals[k] = totals.get(k, 0) + v
        return schemas.Metrics(
            tenant=t, readings_stored=store.count_readings(t), rejected=store.count_rejected(t), ingest=totals,
            instance=instance, commands=command_counters(),
        )

    @app.get("/metrics", tags=["platform"], response_class=PlainTextResponse,
             responses={200: {"content": {PROMETHEUS_TYPE: {}}}})
    def metrics_prometheus(t: Tenant) -> PlainTextResponse:
        """The same metrics in the Prometheus text exposition format (scrape with the tenant's bearer key)."""
        return prometheus(t)

    # -- registry
    @app.get("/api/v1/devices", response_model=list[schemas.Device], tags=["registry"])
    def list_devices(t: Tenant) -> list[schemas.Device]:
        return [_device_out(d) for d in store.list_devices(t)]

    @app.post("/api/v1/devices", response_model=schemas.DevicesCreated, status_code=201, tags=["registry"])
    def create_devices(t: Tenant, body: schemas.DeviceIn | list[schemas.DeviceIn]) -> schemas.DevicesCreated:
        """Provision one device, or many at once (a list)."""
        items = body if isinstance(body, list) else [body]
        records = [
            DeviceRecord(tenant=t, id=d.id, type=d.type, phases=d.phases, gateway=d.gateway, asset=d.asset,
                         meta=dict(d.meta))
            for d in items
        ]
        try:
            store.put_devices(records)
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        return schemas.DevicesCreated(created=len(records))

    @app.get("/api/v1/devices/{device}", response_model=schemas.Device, tags=["registry"])
    def get_device(t: Tenant, device: str) -> schemas.Device:
        return _device_out(own_device(t, device))

    @app.patch("/api/v1/devices/{device}", response_model=schemas.Device, tags=["registry"])
    def patch_device(t: Tenant, device: str, body: schemas.DevicePatch) -> schemas.Device:
        record = own_device(t, device)
        values = body.model_dump(exclude_unset=True)
        if nulls := [k for k in ("type", "phases", "meta") if k in values and values[k] is None]:
            raise HTTPException(422, f"{', '.join(nulls)} cannot be null (only gateway and asset can be cleared)")
        for key, value in values.items():
            setattr(record, key, value)
        store.put_devices([record])
        return _device_out(record)

    @app.delete("/api/v1/devices/{device}", status_code=204, tags=["registry"])
    def delete_device(t: Tenant, device: str) -> None:
        if not store.delete_device(t, device):
            raise HTTPException(404, f"no device {device!r}")

    @app.get("/api/v1/assets", response_model=list[schemas.Asset], tags=["registry"])
    def list_assets(t: Tenant) -> list[schemas.Asset]:
        devices = store.list_devices(t)
        return [_asset_out(a, devices) for a in store.list_assets(t)]

    @app.post("/api/v1/assets", response_model=schemas.Asset, status_code=201, tags=["registry"])
    def create_asset(t: Tenant, body: schemas.AssetIn) -> schemas.Asset:
        if body.parent is not None and store.get_asset(t, body.parent) is None:
            raise HTTPException(422, f"parent asset {body.parent!r} does not exist")
        store.put_asset(AssetRecord(tenant=t, id=body.id, kind=body.kind, name=body.name, parent=body.parent))
        return _asset_out(store.get_asset(t, body.id), [])

    @app.get("/api/v1/assets/{asset}", response_model=schemas.Asset, tags=["registry"])
    def get_asset(t: Tenant, asset: str) -> schemas.Asset:
        record = store.get_asset(t, asset)
        if record is None:
            raise HTTPException(404, f"no asset {asset!r}")
        return _asset_out(record, store.list_devices(t))

    # -- data
    @app.get("/api/v1/devices/{device}/readings", response_model=schemas.Readings, tags=["data"])
    def readings(
        t: Tenant,
        device: str,
        quantity: str | None = None,
        start: str | None = None,
        end: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_READINGS)] = 10_000,
    ) -> schemas.Readings:
        """Raw readings, time-ordered; with ``quantity`` only readings that carry it, with only it."""
        own_device(t, device)
        lo, hi = _span(start, end)
        rows = store.query_readings(t, device, lo, hi, limit if quantity is None else MAX_READINGS)
        out = []
        for r in rows:
            if quantity is None:
                out.append(schemas.ReadingOut(ts=r.ts, seq=r.seq, q=r.q))
            elif quantity in r.q:
                out.append(schemas.ReadingOut(ts=r.ts, seq=r.seq, q={quantity: r.q[quantity]}))
                if len(out) >= limit:
                    break
        return schemas.Readings(device=device, readings=out)

    def aggregates(
        t: str, devices: list[str], quantity: str, start: str, end: str, interval: str, agg: str
    ) -> tuple[int, int, int, list[schemas.AggregateBucket]]:
        """From the stored rollups (or the cache): buckets of ``interval`` with start in [start aligned down, end)."""
        lo, hi = _required_span(start, end)
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
            stored = store.query_rollups(t, devices, quantity, resolution, span_lo, span_hi) if devices else []
            return combine(stored, width)

        combined, as_of = cache.get((t, tuple(devices), quantity, interval, lo, hi), compute)
        out = [
            schemas.AggregateBucket(
                start=b.start, start_iso=datetime.fromtimestamp(b.start / 1000, UTC).isoformat().replace("+00:00", "Z"),
                value=value_of(b, agg), count=b.n)
            for b in combined
        ]
        return lo, hi, as_of, out

    @app.get("/api/v1/devices/{device}/aggregates", response_model=schemas.Aggregates, tags=["data"])
    def device_aggregates(
        t: Tenant, device: str, quantity: str, start: str, end: str, interval: Interval = "15m", agg: Agg = "mean"
    ) -> schemas.Aggregates:
        """Aggregates of one quantity of one device per clock-aligned interval (UTC), from rollups."""
        own_device(t, device)
        lo, hi, as_of, buckets = aggregates(t, [device], quantity, start, end, interval, agg)
        return schemas.Aggregates(device=device, devices=[device], quantity=quantity, interval=interval, agg=agg,
                                  start=lo, end=hi, as_of=as_of, buckets=buckets)

    @app.get("/api/v1/assets/{asset}/aggregates", response_model=schemas.Aggregates, tags=["data"])
    def asset_aggregates(
        t: Tenant, asset: str, quantity: str, start: str, end: str, interval: Interval = "15m", agg: Agg = "mean"
    ) -> schemas.Aggregates:
        """The same over all devices assigned to the asset: mean = total sum / total count, last = latest value."""
        if store.get_asset(t, asset) is None:
            raise HTTPException(404, f"no asset {asset!r}")
        devices = [d.id for d in store.list_devices(t) if d.asset == asset]
        lo, hi, as_of, buckets = aggregates(t, devices, quantity, start, end, interval, agg)
        return schemas.Aggregates(asset=asset, devices=devices, quantity=quantity, interval=interval, agg=agg,
                                  start=lo, end=hi, as_of=as_of, buckets=buckets)

    @app.get("/api/v1/devices/{device}/events", response_model=schemas.Events, tags=["data"])
    def events(
        t: Tenant, device: str, start: str | None = None, end: str | None = None, type: str | None = None
    ) -> schemas.Events:
        own_device(t, device)
        lo, hi = _span(start, end)
        rows = store.query_events(t, device, lo, hi, type)
        return schemas.Events(
            device=device,
            events=[schemas.EventOut(ts=e.ts, type=e.type, severity=e.severity, data=e.data) for e in rows],
        )

    @app.get("/api/v1/completeness", response_model=schemas.Completeness, tags=["data"])
    def completeness(t: Tenant, start: str, end: str) -> schemas.Completeness:
        """Per device with a sampling interval: readings expected in [start, end) vs received."""
        lo, hi = _required_span(start, end)
        if hi <= lo:
            raise HTTPException(422, "end must be after start")
        received = store.readings_per_device(t, lo, hi)
        out = []
        for d in store.list_devices(t):
            interval_ms = int(float(d.meta.get("interval_s") or 0) * 1000)
            if interval_ms <= 0:
                continue
            expected = -(-hi // interval_ms) - -(-lo // interval_ms)  # sampling instants k*interval in [lo, hi)
            got = received.get(d.id, 0)
            out.append(schemas.DeviceCompleteness(
                device=d.id, expected=expected, received=got, ratio=got / expected if expected else 1.0))
        return schemas.Completeness(start=lo, end=hi, devices=out)

    # -- commands
    @app.post("/api/v1/devices/{device}/commands", response_model=schemas.CommandAccepted, status_code=202,
              tags=["commands"])
    def send_command(t: Tenant, device: str, body: schemas.CommandIn) -> schemas.CommandAccepted:
        own_device(t, device)
        if dispatcher is None:
            raise HTTPException(503, "this platform instance does not dispatch commands")
        expires = body.expires
        if body.expires_in_s is not None:
            expires = now_ms() + int(body.expires_in_s * 1000)
        record = dispatcher.submit(t, device, body.name, dict(body.args), expires)
        return schemas.CommandAccepted(id=record.id)

    @app.get("/api/v1/commands/{command_id}", response_model=schemas.Command, tags=["commands"])
    def get_command(t: Tenant, command_id: str) -> schemas.Command:
        record = store.get_command(t, command_id)
        if record is None:
            raise HTTPException(404, f"no command {command_id!r}")
        return schemas.Command(
            id=record.id, device=record.device, name=record.name, args=record.args, ts=record.ts,
            expires=record.expires, status=record.status, detail=record.detail,
            history=[(s, ts) for s, ts in record.history],
        )

    return app


def prometheus_text(tenant: str, readings: int, rejected: int, workers: list[dict[str, int]],
                    extra: dict[str, int], instance: str | None = None) -> str:
    """Prometheus text exposition: per-worker ingest counters, the tenant's totals, cache and command counters."""
    lines: list[str] = []
    if instance:  # an info metric, not a label: Prometheus sets its own `instance` label (the scraped target)
        lines += ["# HELP gridloop_platform_info the platform replica that answered",
                  "# TYPE gridloop_platform_info gauge", f'gridloop_platform_info{{replica="{instance}"}} 1']
    for name in workers[0] if workers else ():
        metric = f"gridloop_ingest_{name}" + ("" if name in GAUGES else "_total")
        kind = "gauge" if name in GAUGES else "counter"
        lines += [f"# HELP {metric} {GAUGES.get(name, name.replace('_', ' ') + ' (ingest worker)')}",
                  f"# TYPE {metric} {kind}"]
        lines += [f'{metric}{{worker="{i}"}} {w[name]}' for i, w in enumerate(workers)]
    for name, value, what in (("readings_stored", readings, "readings stored for the tenant"),
                              ("rejected_messages", rejected, "rejected messages of the tenant")):
        lines += [f"# HELP gridloop_{name} {what}", f"# TYPE gridloop_{name} gauge",
                  f'gridloop_{name}{{tenant="{tenant}"}} {value}']
    for name, value in extra.items():
        kind = "gauge" if name.endswith(("entries", "leader")) else "counter"
        metric = f"gridloop_{name}" + ("_total" if kind == "counter" else "")
        lines += [f"# HELP {metric} {name.replace('_', ' ')}", f"# TYPE {metric} {kind}", f"{metric} {value}"]
    return "\n".join(lines) + "\n"


def jsonable_errors(exc: RequestValidationError) -> list[dict]:
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]


def _device_out(d: DeviceRecord) -> schemas.Device:
    return schemas.Device(id=d.id, type=d.type, phases=d.phases, gateway=d.gateway, asset=d.asset, meta=d.meta,
                          status=d.status)


def _asset_out(a: AssetRecord | None, devices: list[DeviceRecord]) -> schemas.Asset:
    assert a is not None
    return schemas.Asset(id=a.id, kind=a.kind, name=a.name, parent=a.parent,
                         devices=[d.id for d in devices if d.asset == a.id])
