"""Capacity model: per-reading CPU cost per component fitted on measured points, utilisation rule, projection.

Each component is one process that uses at most about one core (Mosquitto is single-threaded, the
platform's ingest + SQLite writer is bound by the GIL and one writer), so a component needs
ceil(λ·c / ρ_max) instances for an offered rate λ and fitted cost c seconds per reading. Queueing
delay per instance follows M/M/1: W = S / (1 − ρ) for a service time S per envelope.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

COMPONENTS = ("broker", "platform", "simulator")
RHO_MAX = 0.7  # plan every instance to at most 70 % busy: M/M/1 waits stay within ~3.3x the service time
TARGETS = {"1M meters @ 10 s": 100_000.0, "1M meters @ 1 Hz": 1_000_000.0}
ENVELOPE = 500  # readings per telemetry message (the DIA's default batch)
SATURATED_COMMIT = 200 * ENVELOPE  # a backlogged ingest worker commits 200 messages at once (IngestWorker)


@dataclass(frozen=True)
class Fit:
    """cpu_s = fixed_s + per_reading_s · readings + per_commit_s · store commits; rss = rss0 + per meter · meters."""

    component: str
    fixed_s: float
    per_reading_s: float
    rss0_mb: float
    rss_per_meter_kb: float
    per_commit_s: float = 0.0

    def cpu_s(self, readings: float, commits: float = 0.0) -> float:
        return self.fixed_s + self.per_reading_s * readings + self.per_commit_s * commits

    def cost(self, readings_per_commit: float = SATURATED_COMMIT) -> float:
        """CPU seconds per reading when the store commits ``readings_per_commit`` readings at a time."""
        return self.per_reading_s + self.per_commit_s / max(readings_per_commit, 1.0)

    def max_rate_per_core(self, readings_per_commit: float = SATURATED_COMMIT) -> float:
        """Readings/s one instance can take before its core is saturated."""
        c = self.cost(readings_per_commit)
        return 1.0 / c if c > 0 else math.inf


def _line(x: list[float], y: list[float]) -> tuple[float, float]:
    """Least-squares intercept and slope, slope ≥ 0 (with one distinct x: through the origin)."""
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    if len(set(x)) < 2:
        return 0.0, float(ya.sum() / max(xa.sum(), 1e-12))
    slope, intercept = np.polyfit(xa, ya, 1)
    if slope < 0:
        return float(ya.mean()), 0.0
    return float(intercept), float(slope)


def _commit_term(good: list[dict], component: str) -> tuple[float, float, float] | None:
    """fixed, per-reading and per-commit costs by least squares, or None if a cost comes out negative."""
    if component != "platform" or len(good) < 4 or not all("ingest_commits" in r for r in good):
        return None
    a = np.array([[1.0, r["readings_stored"], r["ingest_commits"]] for r in good])
    y = np.array([r[f"{component}_cpu_s"] for r in good])
    coef = np.linalg.lstsq(a, y, rcond=None)[0]
    return None if (coef < 0).any() else (float(coef[0]), float(coef[1]), float(coef[2]))


def fit(rows: list[dict]) -> dict[str, Fit]:
    """Per-component costs from measured rows (those without errors); the platform also pays per store commit."""
    out = {}
    for c in COMPONENTS:
        good = [r for r in rows if f"{c}_cpu_s" in r]
        if not good:
            continue
        m0, m1 = _line([r["meters"] for r in good], [r[f"{c}_rss_mb"] for r in good])
        three = _commit_term(good, c)
        if three is not None:
            out[c] = Fit(c, three[0], three[1], m0, m1 * 1024, three[2])
            continue
        a, b = _line([r["readings_stored"] for r in good], [r[f"{c}_cpu_s"] for r in good])
        out[c] = Fit(c, a, b, m0, m1 * 1024)
    return out


def split(rows: list[dict]) -> tuple[list[dict], dict | None]:
    """Fit on all measured points but the one with the most readings stored, which is held out to validate."""
    good = [r for r in rows if "error" not in r]
    if len(good) < 3:
        return good, None
    held = max(good, key=lambda r: r["readings_stored"])
    return [r for r in good if r is not held], held


def validate(fits: dict[str, Fit], held: dict) -> dict:
    """Predicted vs measured CPU seconds of the held-out point, per component, and the one-host throughput limit."""
    out: dict = {"point": held["point"], "components": {}}
    for c, f in fits.items():
        measured = held[f"{c}_cpu_s"]
        predicted = f.cpu_s(held["readings_stored"], held.get("ingest_commits", 0))
        out["components"][c] = {"measured_cpu_s": measured, "predicted_cpu_s": round(predicted, 3),
                                "error_pct": round(100 * (predicted - measured) / max(measured, 1e-9), 1)}
    limit = host_limit(fits)
    out["host_limit_per_s"] = round(limit["readings_per_s"], 0)
    out["measured_stored_per_s"] = held["stored_per_s"]
    out["measured_offered_per_s"] = held["offered_per_s"]
    out["predicted_stored_per_s"] = round(min(held["offered_per_s"], limit["readings_per_s"]), 0)
    out["stored_error_pct"] = round(100 * (out["predicted_stored_per_s"] - held["stored_per_s"])
                                    / max(held["stored_per_s"], 1e-9), 1)
    out["predicted_kept_up"] = held["offered_per_s"] <= limit["readings_per_s"]
    out["measured_kept_up"] = bool(held.get("kept_up"))
    return out


def host_limit(fits: dict[str, Fit], cores: int = 2) -> dict:
    """Where one host with ``cores`` saturates: the first single-process limit or the shared-core limit."""
    per_process = {c: f.max_rate_per_core() for c, f in fits.items()}
    shared = cores / max(sum(f.cost() for f in fits.values()), 1e-12)
    first = min(per_process, key=per_process.get)  # type: ignore[arg-type]
    rate = min(shared, per_process[first])
    return {"readings_per_s": rate, "first": first if per_process[first] <= shared else "all cores (shared)",
            "per_process": per_process, "shared_cores": shared}


def project(fits: dict[str, Fit], rate: float, meters: int, bytes_per_reading: float,
            readings_per_commit: float = ENVELOPE) -> dict:
    """Instances, cores, memory, disk per day and M/M/1 envelope wait per component at ``rate`` readings/s.

    Planned at ρ ≤ 0.7, i.e. without a backlog, so commits are small: one envelope each by default.
    """
    comps = {}
    for c, f in fits.items():
        cost = f.cost(readings_per_commit)
        busy = rate * cost  # cores of pure work
        n = max(1, math.ceil(busy / RHO_MAX))
        rho = busy / n
        service_ms = ENVELOPE * cost * 1000
        comps[c] = {"cpu_cores_busy": round(busy, 2), "instances": n, "utilisation": round(rho, 3),
                    "memory_gb": round(n * f.rss0_mb / 1024 + meters * f.rss_per_meter_kb / 1024 ** 2, 2),
                    "envelope_service_ms": round(service_ms, 2),
                    "envelope_wait_ms": round(service_ms / (1 - rho), 2) if rho < 1 else math.inf}
    first = max(fits, key=lambda c: fits[c].cost(readings_per_commit))
    return {"readings_per_s": rate, "meters": meters, "readings_per_commit": readings_per_commit,
            "components": comps, "disk_gb_per_day": round(bytes_per_reading * rate * 86400 / 1e9, 1),
            "saturates_first": first}


def model(rows: list[dict]) -> dict:
    """Fit, validate on the held-out point, and project the targets."""
    fit_rows, held = split(rows)
    fits = fit(fit_rows)
    bpr = [r["bytes_per_reading"] for r in fit_rows if r.get("readings_stored", 0) > 0]
    bytes_per_reading = float(np.median(bpr)) if bpr else 0.0
    return {
        "measured_inputs": {"fit_points": [r["point"] for r in fit_rows],
                            "fits": {c: asdict(f) for c, f in fits.items()},
                            "bytes_per_reading": bytes_per_reading},
        "validation": validate(fits, held) if held and fits else None,
        "host_limit_2_cores": host_limit(fits) if fits else None,
        "projections": {name: project(fits, rate, 1_000_000, bytes_per_reading)
                        for name, rate in TARGETS.items()} if fits else {},
    }


def render(m: dict) -> str:
    """The model as Markdown: MEASURED inputs first, then PROJECTED numbers."""
    lines = ["## Measured inputs (fitted on: " + ", ".join(m["measured_inputs"]["fit_points"]) + ")", "",
             "| component | fixed CPU s | CPU µs / reading | CPU ms / store commit | max readings/s per core "
             "(backlogged / one envelope per commit) | RSS base MB | RSS kB / meter |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for c, f in m["measured_inputs"]["fits"].items():
        fit_ = Fit(**f)
        lines.append(f"| {c} | {f['fixed_s']:.2f} | {f['per_reading_s'] * 1e6:.2f} | {f['per_commit_s'] * 1e3:.2f} | "
                     f"{fit_.max_rate_per_core():,.0f} / {fit_.max_rate_per_core(ENVELOPE):,.0f} | "
                     f"{f['rss0_mb']:.0f} | {f['rss_per_meter_kb']:.2f} |")
    lines.append(f"\nStore growth: {m['measured_inputs']['bytes_per_reading']:.0f} bytes per reading (median).")
    v = m.get("validation")
    if v:
        lines += ["", f"## Validation on the held-out point {v['point']}", "",
                  "| component | measured CPU s | predicted CPU s | error |", "|---|---:|---:|---:|"]
        lines += [f"| {c} | {x['measured_cpu_s']:.2f} | {x['predicted_cpu_s']:.2f} | {x['error_pct']:+.1f} % |"
                  for c, x in v["components"].items()]
        lines.append(f"\nPredicted one-host limit {v['host_limit_per_s']:,.0f} readings/s. The point offered "
                     f"{v['measured_offered_per_s']:,.0f}/s; predicted stored {v['predicted_stored_per_s']:,.0f}/s, "
                     f"measured {v['measured_stored_per_s']:,.0f}/s ({v['stored_error_pct']:+.1f} %); "
                     f"predicted kept up: {v['predicted_kept_up']}, measured: {v['measured_kept_up']}.")
    for name, p in m["projections"].items():
        lines += ["", f"## PROJECTED: {name} ({p['readings_per_s']:,.0f} readings/s, "
                  f"{p['readings_per_commit']:,.0f} readings per store commit)", "",
                  "| component | busy cores | instances at ρ≤0.7 | utilisation | memory GB | "
                  "envelope service ms | M/M/1 wait ms |", "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {c} | {x['cpu_cores_busy']} | {x['instances']} | {x['utilisation']} | {x['memory_gb']} | "
                  f"{x['envelope_service_ms']} | {x['envelope_wait_ms']} |" for c, x in p["components"].items()]
        lines.append(f"\nDisk: {p['disk_gb_per_day']:,} GB/day. Saturates first: {p['saturates_first']}.")
    return "\n".join(lines) + "\n"


def write_capacity(rows: list[dict], out: Path) -> dict:
    """capacity.json and capacity.md in the study directory."""
    m = model(rows)
    (out / "capacity.json").write_text(json.dumps(m, indent=1, default=str))
    (out / "capacity.md").write_text(render(m))
    return m
