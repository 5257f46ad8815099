"""Write a study's table (CSV and Markdown) and its plots."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

MD_COLUMNS = [
    ("point", "point"), ("meters", "meters"), ("interval_s", "interval s"), ("mode", "mode"),
    ("offered_per_s", "offered/s"), ("stored_per_s", "stored/s"), ("loss_pct", "loss %"),
    ("latency_p50_ms", "p50 ms"), ("latency_p95_ms", "p95 ms"), ("latency_p99_ms", "p99 ms"),
    ("broker_cpu_pct", "broker CPU %"), ("platform_cpu_pct", "platform CPU %"), ("simulator_cpu_pct", "sim CPU %"),
    ("broker_rss_mb", "broker MB"), ("platform_rss_mb", "platform MB"), ("bytes_per_reading", "B/reading"),
    ("db_gb_per_day", "DB GB/day"), ("query_readings_ms", "query raw ms"), ("query_aggregates_ms", "query agg ms"),
    ("kept_up", "kept up"),
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


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(h for _, h in MD_COLUMNS) + " |", "|" + "---|" * len(MD_COLUMNS)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['point']} | failed: {r['error']} |" + " |" * (len(MD_COLUMNS) - 2))
            continue
        lines.append("| " + " | ".join(_cell(r.get(k)) for k, _ in MD_COLUMNS) + " |")
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
    """Throughput and loss, latency percentiles, CPU per component, query latency vs database size."""
    rows = sorted((r for r in rows if "error" not in r), key=lambda r: r["offered_per_s"])
    if not rows:
        return []
    x = [r["offered_per_s"] for r in rows]
    paths = []

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax.plot(x, x, "k:", lw=1, label="stored = offered")
    ax.plot(x, [r["stored_per_s"] for r in rows], "o-", label="stored/s")
    ax.set(xlabel="readings offered / s", ylabel="readings stored / s", title="throughput")
    ax.legend()
    ax2.plot(x, [r["loss_pct"] for r in rows], "o-", color="tab:red")
    ax2.set(xlabel="readings offered / s", ylabel="readings lost (%)", title="loss")
    paths.append(_save(fig, out / f"{prefix}throughput.png"))

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
    paths.append(_save(fig, out / f"{prefix}latency.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in ("broker", "platform", "simulator"):
        ax.plot(x, [r.get(f"{name}_cpu_pct") or 0 for r in rows], "o-", label=name)
    ax.axhline(100, color="k", lw=0.8, ls=":")
    ax.set(xlabel="readings offered / s", ylabel="CPU (% of one core, mean over the point)", title="CPU per process")
    ax.legend()
    paths.append(_save(fig, out / f"{prefix}cpu.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    size = [r["db_bytes"] / 1e6 for r in rows]
    ax.plot(size, [r["query_readings_ms"] for r in rows], "o", label="raw readings, one meter")
    ax.plot(size, [r["query_aggregates_ms"] for r in rows], "s", label="15-min aggregates, one meter")
    ax.set(xlabel="database size (MB)", ylabel="query time (ms, median of 5)", title="query latency vs DB size")
    ax.legend()
    paths.append(_save(fig, out / f"{prefix}query.png"))
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
