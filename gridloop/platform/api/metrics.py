"""Counters as JSON or in the Prometheus text format (tag ``platform``).

A tenant's key sees that tenant's own counts only (what it stored, what was rejected, its share of ingest); the
platform's admin key sees this replica's workers, cache and command dispatch over all tenants.
"""

import hmac
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException
from fastapi.responses import PlainTextResponse

from gridloop.contract import rest as schemas
from gridloop.platform.api.deps import ApiContext, Ctx, Tenant, bearer, tenant

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# ingest counter -> (Prometheus type, help); every other field of IngestCounters is a counter too
GAUGES = {"queue_depth": "messages waiting for the worker's writer", "degraded": "1 while the store is unavailable"}
PROMETHEUS = {200: {"content": {PROMETHEUS_TYPE: {}}}}

router = APIRouter(tags=["platform"])


def is_admin(ctx: ApiContext, authorization: str | None) -> bool:
    return ctx.admin_key is not None and hmac.compare_digest(bearer(authorization), ctx.admin_key)


def tenant_or_admin(ctx: Ctx, authorization: Annotated[str | None, Header()] = None) -> str | None:
    """The caller's tenant, or None for the platform's admin key."""
    return None if is_admin(ctx, authorization) else tenant(ctx, authorization)


def command_counters(ctx: ApiContext) -> dict[str, int]:
    dispatcher = ctx.dispatcher
    if dispatcher is None:
        return {}
    return {"responses": dispatcher.responses, "resent": dispatcher.resent, "leader": int(dispatcher.leader),
            "disconnects": dispatcher.disconnects}


def _workers(ctx: ApiContext) -> list[dict[str, int]]:
    return [{k: v for k, v in asdict(c).items() if k != "tenants"} for c in ctx.ingest_counters()]


def _tenant_ingest(ctx: ApiContext, t: str) -> dict[str, int]:
    """The tenant's share of this replica's ingest counters, summed over its workers."""
    totals: dict[str, int] = {}
    for counters in ctx.ingest_counters():
        for k, v in counters.tenants.get(t, {}).items():
            totals[k] = totals.get(k, 0) + v
    return totals


@router.get("/api/v1/metrics", response_model=schemas.Metrics, responses=PROMETHEUS)
def metrics(ctx: Ctx, t: Tenant, format: Literal["json", "prometheus"] = "json"):
    """The tenant's totals and its share of this replica's ingest; ``format=prometheus``: as text."""
    if format == "prometheus":
        return _prometheus(ctx, t)
    return schemas.Metrics(tenant=t, readings_stored=ctx.store.count_readings(t), rejected=ctx.store.count_rejected(t),
                           ingest=_tenant_ingest(ctx, t), instance=ctx.instance)


@router.get("/api/v1/admin/metrics", response_model=schemas.PlatformMetrics)
def platform_metrics(ctx: Ctx, authorization: Annotated[str | None, Header()] = None) -> schemas.PlatformMetrics:
    """This replica's ingest (all workers, all tenants), command dispatch and cache: the admin key only."""
    if not is_admin(ctx, authorization):
        raise HTTPException(403, "platform-wide metrics need the platform admin key")
    totals: dict[str, int] = {}
    for worker in _workers(ctx):
        for k, v in worker.items():
            totals[k] = totals.get(k, 0) + v
    return schemas.PlatformMetrics(instance=ctx.instance, ingest=totals, commands=command_counters(ctx),
                                   tenants=len({t for c in ctx.ingest_counters() for t in c.tenants}))


@router.get("/metrics", response_class=PlainTextResponse, responses=PROMETHEUS)
def metrics_prometheus(ctx: Ctx, caller: Annotated[str | None, Depends(tenant_or_admin)]) -> PlainTextResponse:
    """Prometheus text exposition: with a tenant's key its own counts, with the admin key the replica's."""
    return _prometheus(ctx, caller)


def _prometheus(ctx: ApiContext, t: str | None) -> PlainTextResponse:
    if t is not None:
        own = {f"ingest_{k}": v for k, v in _tenant_ingest(ctx, t).items()}
        text = prometheus_text(t, ctx.store.count_readings(t), ctx.store.count_rejected(t), [], own, ctx.instance)
    else:
        counters = ctx.cache.counters
        extra = {"query_cache_hits": counters.hits, "query_cache_misses": counters.misses,
                 "query_cache_refreshes": counters.refreshes, "query_cache_entries": counters.entries,
                 **{f"commands_{k}": v for k, v in command_counters(ctx).items()}}
        text = prometheus_text(None, 0, 0, _workers(ctx), extra, ctx.instance)
    return PlainTextResponse(text, media_type=PROMETHEUS_TYPE)


def prometheus_text(tenant: str | None, readings: int, rejected: int, workers: list[dict[str, int]],
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
    if tenant is not None:
        for name, value, what in (("readings_stored", readings, "readings stored for the tenant"),
                                  ("rejected_messages", rejected, "rejected messages of the tenant")):
            lines += [f"# HELP gridloop_{name} {what}", f"# TYPE gridloop_{name} gauge",
                      f'gridloop_{name}{{tenant="{tenant}"}} {value}']
    for name, value in extra.items():
        kind = "gauge" if name.endswith(("entries", "leader")) else "counter"
        metric = f"gridloop_{name}" + ("_total" if kind == "counter" else "")
        lines += [f"# HELP {metric} {name.replace('_', ' ')}", f"# TYPE {metric} {kind}", f"{metric} {value}"]
    return "\n".join(lines) + "\n"
