"""Ingest, cache and command counters as JSON or in the Prometheus text format (tag ``platform``)."""

from dataclasses import asdict
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from gridloop.contract import rest as schemas
from gridloop.platform.api.deps import ApiContext, Ctx, Tenant

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# ingest counter -> (Prometheus type, help); every other field of IngestCounters is a counter too
GAUGES = {"queue_depth": "messages waiting for the worker's writer"}

router = APIRouter(tags=["platform"])


def command_counters(ctx: ApiContext) -> dict[str, int]:
    dispatcher = ctx.dispatcher
    if dispatcher is None:
        return {}
    return {"responses": dispatcher.responses, "resent": dispatcher.resent, "leader": int(dispatcher.leader),
            "disconnects": dispatcher.disconnects}


def prometheus(ctx: ApiContext, t: str) -> PlainTextResponse:
    workers = [asdict(c) for c in ctx.ingest_counters()]
    counters = ctx.cache.counters
    extra = {
        "query_cache_hits": counters.hits, "query_cache_misses": counters.misses,
        "query_cache_refreshes": counters.refreshes, "query_cache_entries": counters.entries,
        **{f"commands_{k}": v for k, v in command_counters(ctx).items()},
    }
    text = prometheus_text(t, ctx.store.count_readings(t), ctx.store.count_rejected(t), workers, extra, ctx.instance)
    return PlainTextResponse(text, media_type=PROMETHEUS_TYPE)


@router.get("/api/v1/metrics", response_model=schemas.Metrics, responses={200: {"content": {PROMETHEUS_TYPE: {}}}})
def metrics(ctx: Ctx, t: Tenant, format: Literal["json", "prometheus"] = "json"):
    """Ingest counters (all workers summed) and the tenant's totals; ``format=prometheus``: per worker, as text."""
    if format == "prometheus":
        return prometheus(ctx, t)
    totals: dict[str, int] = {}
    for counters in ctx.ingest_counters():
        for k, v in asdict(counters).items():
            totals[k] = totals.get(k, 0) + v
    return schemas.Metrics(
        tenant=t, readings_stored=ctx.store.count_readings(t), rejected=ctx.store.count_rejected(t), ingest=totals,
        instance=ctx.instance, commands=command_counters(ctx),
    )


@router.get("/metrics", response_class=PlainTextResponse, responses={200: {"content": {PROMETHEUS_TYPE: {}}}})
def metrics_prometheus(ctx: Ctx, t: Tenant) -> PlainTextResponse:
    """The same metrics in the Prometheus text exposition format (scrape with the tenant's bearer key)."""
    return prometheus(ctx, t)


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
