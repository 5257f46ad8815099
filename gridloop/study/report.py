"""Write a study's table (CSV and Markdown) and its plots."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from gridloop.study.service_report import SERVICE_COLUMNS, has_service, service_figure

MD_COLUMNS = [
    ("point", "point"), ("meters", "meters"), ("interval_s", "interval s"), ("mode", "mode"),
    ("offered_per_s", "offered/s"), ("stored_per_s", "stored/s"), ("loss_pct", "loss %"),
    ("latency_p50_ms", "p50 ms"), ("latency_p95_ms", "p95 ms"), ("latency_p99_ms", "p99 ms"),
    ("broker_cpu_pct", "broker CPU %"), ("platform_cpu_pct", "platform CPU %"), ("simulator_cpu_pct", "sim CPU %"),
    ("broker_rss_mb", "broker MB"), ("platform_rss_mb", "platform MB"), ("bytes_per_reading", "B/reading"),
    ("db_gb_per_day", "DB GB/day"), ("query_readings_ms", "query raw ms"), ("query_aggregates_ms", "query agg ms"),
    ("kept_up", "kept up"),
]
# added when a point restored history (gridloop.study.history): how big the store was and what it answered
HISTORY_COLUMNS = [
    ("history_days", "history d"), ("db_mb", "DB MB"), ("history_fill_s", "fill s"),
    ("query_history_readings_ms", "query day raw ms"), ("query_history_aggregates_ms", "query day agg ms"),
    ("query_completeness_ms", "completeness ms"), ("query_metrics_ms", "metrics ms"),
]


def write_table(rows: list[dict], out: Path) -> tuple[Path, Path]:
    """table.csv with every measured column, table.md with the headline ones."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    csv_path = out / "table.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    md_path = out / "table.md"
    md_path.write_text(markdown_table(rows))
    return csv_path, md_path


def _has_history(rows: list[dict]) -> bool:
    return any((r.get("history_days") or 0) > 0 for r in rows)


def markdown_table(rows: list[dict]) -> str:
    columns = MD_COLUMNS + (HISTORY_COLUMNS if _has_history(rows) else []) + \
        (SERVICE_COLUMNS if has_service(rows) else [])
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['point']} | failed: {r['error']} |" + " |" * (len(columns) - 2))
            continue
        lines.append("| " + " | ".join(_cell(r.get(k)) for k, _ in columns) + " |")
    return "\n".join(lines) + "\n"


def _cell(v: object) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.3g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def largest_without_loss(rows: list[dict], key: str = "no_loss") -> dict | None:
    """The point with the highest offered rate among those that satisfy ``key``."""
    ok = [r for r in rows if r.get(key)]
    return max(ok, key=lambda r: r["offered_per_s"]) if ok else None


def write_plots(rows: list[dict], out: Path, prefix: str = "study-") -> list[Path]:
    """Throughput and loss, latency percentiles, CPU per component, query latency vs database size; with history
    points, ingest latency, rate and cost vs database size too; with a service, its commands, KPI and lag."""
    rows = sorted((r for r in rows if "error" not in r), key=lambda r: r["offered_per_s"])
    if not rows:
        return []
    paths = [_save(_throughput(rows), out / f"{prefix}throughput.png"),
             _save(_latency(rows), out / f"{prefix}latency.png"),
             _save(_cpu(rows), out / f"{prefix}cpu.png")]
    by_size = sorted(rows, key=lambda r: r["db_bytes"])
    size = [r["db_bytes"] / 1e6 for r in by_size]
    wide = max(size) > 20 * max(min(size), 1e-3)  # a store grown by history: sizes over decades
    paths.append(_save(_queries(by_size, size, wide), out / f"{prefix}query.png"))
    if _has_history(rows):  # ingest as the store grows: the same load against ever larger stores
        paths.append(_save(_growth(by_size, size, wide), out / f"{prefix}growth.png"))
    if has_service(rows):
        paths.append(_save(service_figure(rows), out / f"{prefix}service.png"))
    return paths


def _throughput(rows: list[dict]):
    x = [r["offered_per_s"] for r in rows]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax.plot(x, x, "k:", lw=1, label="stored = offered")
    ax.plot(x, [r["stored_per_s"] for r in rows], "o-", label="stored/s")
    ax.set(xlabel="readings offered / s", ylabel="readings stored / s", title="throughput")
    ax.legend()
    ax2.plot(x, [r["loss_pct"] for r in rows], "o-", color="tab:red")
    ax2.set(xlabel="readings offered / s", ylabel="readings lost (%)", title="loss")
    return fig


def _latency(rows: list[dict]):
    fig, ax = plt.subplots(figsize=(7, 4))
    for interval in sorted({r["interval_s"] for r in rows}):  # burst size differs per interval: one line each
        part = [r for r in rows if r["interval_s"] == interval]
        px = [r["offered_per_s"] for r in part]
        for k, style in (("latency_p50_ms", "o-"), ("latency_p95_ms", "s--"), ("latency_p99_ms", "^:")):
            ax.plot(px, [r.get(k) or float("nan") for r in part], style,
                    label=f"{k.split('_')[1]}, interval {interval:g} s")
    ax.set(xlabel="readings offered / s", ylabel="publish → stored (ms)", title="end-to-end latency (probe)",
           yscale="log")
    ax.legend(fontsize=7)
    return fig


def _cpu(rows: list[dict]):
    x = [r["offered_per_s"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in ("broker", "platform", "simulator"):
        ax.plot(x, [r.get(f"{name}_cpu_pct") or 0 for r in rows], "o-", label=name)
    ax.axhline(100, color="k", lw=0.8, ls=":")
    ax.set(xlabel="readings offered / s", ylabel="CPU (% of one core, mean over the point)", title="CPU per process")
    ax.legend()
    return fig


QUERY_LINES = (
    ("query_readings_ms", "o-", "raw readings, one meter, the run's window"),
    ("query_aggregates_ms", "s-", "15-min means, one meter, the run's window"),
    ("query_history_readings_ms", "o--", "raw readings, one meter, a day of history"),
    ("query_history_aggregates_ms", "s--", "15-min means, one meter, a day of history"),
    ("query_completeness_ms", "^:", "completeness report, all meters, the run's window"),
    ("query_metrics_ms", "v:", "/api/v1/metrics of the tenant (counts its readings)"),
)


def _queries(by_size: list[dict], size: list[float], wide: bool):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, style, label in QUERY_LINES:
        ys = [r.get(key) for r in by_size]
        if any(y is not None for y in ys):
            ax.plot(size, [float("nan") if y is None else y for y in ys], style, label=label)
    for r, x in zip(by_size, size, strict=True):
        if r.get("history_days"):
            ax.annotate(f"{r['history_days']:g} d", (x, r["query_readings_ms"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
    ax.set(xlabel="database size (MB)", ylabel="query time (ms, median of 5)", title="query latency vs DB size",
           xscale="log" if wide else "linear", yscale="log" if wide else "linear")
    ax.legend(fontsize=7)
    return fig


def _growth(by_size: list[dict], size: list[float], wide: bool):
    scale = "log" if wide else "linear"
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for k, style in (("latency_p50_ms", "o-"), ("latency_p95_ms", "s--"), ("latency_p99_ms", "^:")):
        ax.plot(size, [r.get(k) or float("nan") for r in by_size], style, label=k.split("_")[1])
    for r, x in zip(by_size, size, strict=True):
        ax.annotate(f"{r.get('history_days') or 0:g} d", (x, r.get("latency_p95_ms") or 0),
                    textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set(xlabel="database size (MB)", ylabel="publish → stored (ms)", title="ingest latency (probe) vs DB size",
           xscale=scale)
    ax.legend(fontsize=7)
    ax2.plot(size, [r["offered_per_s"] for r in by_size], "k:", label="offered/s")
    ax2.plot(size, [r["stored_per_s"] for r in by_size], "o-", label="stored/s")
    ax2.set(xlabel="database size (MB)", ylabel="readings / s", title="ingest rate and cost vs DB size",
            xscale=scale, ylim=(0, None))
    cost = ax2.twinx()
    cost.plot(size, [r.get("platform_us_per_reading") or float("nan") for r in by_size], "s--",
              color="tab:red", label="platform CPU µs / reading")
    cost.set(ylabel="platform CPU µs / reading", ylim=(0, None))
    lines = ax2.get_legend_handles_labels()
    more = cost.get_legend_handles_labels()
    ax2.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="lower left")
    return fig


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
