"""Capacity model: per-reading CPU cost per component fitted on measured points, utilisation rule, projection.

Each component is one process that uses at most about one core (Mosquitto is single-threaded, the
platform's ingest + SQLite writer is bound by the GIL and one writer), so a component needs
ceil(λ·c / ρ_max) instances for an offered rate λ and fitted cost c seconds per reading. Queueing
delay per instance follows M/M/1: W = S / (1 − ρ) for a service time S per envelope.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

COMPONENTS = ("broker", "platform", "simulator")
RHO_MAX = 0.7  # plan every instance to at most 70 % busy: M/M/1 waits stay within ~3.3x the service time
TARGETS = {"1M meters @ 10 s": (1_000_000, 10.0), "1M meters @ 1 Hz": (1_000_000, 1.0)}  # meters, interval s
ENVELOPE = 500  # readings per telemetry message (the DIA's default batch)


@dataclass(frozen=True)
class Fit:
    """cpu_s = fixed_s + per_reading_s · readings + per_solve_s · grid solves; rss = rss0 + rss_per_meter · meters.

    ``per_solve_s`` is fitted only where the points separate it from the per-reading cost (the simulator of a
    study that sweeps homes and substations: every step solves every substation's grid).
    """

    component: str
    fixed_s: float
    per_reading_s: float
    rss0_mb: float
    rss_per_meter_kb: float
    per_solve_s: float = 0.0
    fixed_per_partition: bool = False  # fitted with the partitions as a regressor: each pays fixed_s

    def cpu_s(self, readings: float, solves: float = 0.0, partitions: int = 1) -> float:
        fixed = self.fixed_s * (partitions if self.fixed_per_partition else 1)
        return fixed + self.per_reading_s * readings + self.per_solve_s * solves

    def rss_mb(self, meters: float, partitions: int = 1) -> float:
        base = self.rss0_mb * (partitions if self.fixed_per_partition else 1)
        return base + self.rss_per_meter_kb * meters / 1024

    def per_reading_at(self, readings_per_solve: float) -> Fit:
        """The same costs with the per-solve cost spread over the readings of a solve (a fleet's shape)."""
        extra = self.per_solve_s / readings_per_solve if self.per_solve_s and readings_per_solve > 0 else 0.0
        return replace(self, per_reading_s=self.per_reading_s + extra, per_solve_s=0.0)

    @property
    def max_rate_per_core(self) -> float:
        """Readings/s one instance can take before its core is saturated."""
        return 1.0 / self.per_reading_s if self.per_reading_s > 0 else math.inf


def _line(x: list[float], y: list[float]) -> tuple[float, float]:
    """Least-squares intercept and slope; through the origin (an upper bound on the slope) when the
    points cannot separate the two, e.g. costs below the measuring resolution."""
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    if len(set(x)) >= 2:
        slope, intercept = np.polyfit(xa, ya, 1)
        if slope > 0 and intercept >= 0:
            return float(intercept), float(slope)
    return 0.0, float(ya.sum() / max(xa.sum(), 1e-12))


def solves(row: dict) -> float:
    """Grid solves of a point: every step solves every substation."""
    return row.get("sim_s", 0) / max(row.get("step_s", 1), 1e-9) * row.get("substations", 1)


def _simulator_cost(rows: list[dict], cpu: list[float]) -> tuple[float, float, float, bool] | None:
    """Non-negative least squares cpu = a·partitions + b·readings + c·solves: each partition pays its own start
    where the points vary the partitions, and solves cost apart from readings only where the points separate
    them (readings per solve that vary, i.e. more than one fleet shape). None if neither applies."""
    from scipy.optimize import nnls

    readings = np.asarray([r["readings_stored"] for r in rows], float)
    solved = np.asarray([solves(r) for r in rows], float)
    parts = np.asarray([r.get("partitions", 1) for r in rows], float)
    per_solve = readings / np.maximum(solved, 1e-9)
    separable = len(cpu) >= 4 and per_solve.max() >= 1.2 * per_solve.min()
    partitioned = len(set(parts)) > 1
    if len(cpu) < 3 or not (separable or partitioned):
        return None
    x = np.column_stack([parts if partitioned else np.ones(len(cpu)), readings] + ([solved] if separable else []))
    scale = x.max(axis=0)
    coef, _ = nnls(x / scale, np.asarray(cpu, float))
    coef = coef / scale
    return float(coef[0]), float(coef[1]), float(coef[2]) if separable else 0.0, partitioned


def _memory_per_partition(rows: list[dict], component: str) -> tuple[float, float] | None:
    """rss = base·partitions + per_meter·meters (non-negative least squares), or None if partitions do not vary."""
    from scipy.optimize import nnls

    parts = [r.get("partitions", 1) for r in rows]
    if len(set(parts)) < 2:
        return None
    x = np.column_stack([parts, [r["meters"] for r in rows]]).astype(float)
    scale = x.max(axis=0)
    coef, _ = nnls(x / scale, np.asarray([r[f"{component}_rss_mb"] for r in rows], float))
    return float(coef[0] / scale[0]), float(coef[1] / scale[1])


def fit(rows: list[dict]) -> dict[str, Fit]:
    """Per-component costs from measured rows (those without errors); the simulator's with a per-solve cost when
    the points vary the grid solves apart from the readings."""
    out = {}
    for c in COMPONENTS:
        good = [r for r in rows if f"{c}_cpu_s" in r]
        if not good:
            continue
        m0, m1 = _line([r["meters"] for r in good], [r[f"{c}_rss_mb"] for r in good])
        cpu = [r[f"{c}_cpu_s"] for r in good]
        cost = _simulator_cost(good, cpu) if c == "simulator" else None
        if cost is not None:  # each partition is a process of its own: its own start and its own base memory
            base = _memory_per_partition(good, c) if cost[3] else None
            out[c] = Fit(c, cost[0], cost[1], base[0] if base else m0, (base[1] if base else m1) * 1024, cost[2],
                         fixed_per_partition=cost[3])
        else:
            a, b = _line([r["readings_stored"] for r in good], cpu)
            out[c] = Fit(c, a, b, m0, m1 * 1024)
    return out


def split(rows: list[dict]) -> tuple[list[dict], dict | None, list[dict]]:
    """(fit points, held-out point, overloaded points), none of the last two used in the fit.

    The model is for planning below saturation, so it is fitted on the points whose store kept up,
    minus the largest of them, which is held out to validate; overloaded points are checked apart.
    """
    good = [r for r in rows if "error" not in r]
    sustained = [r for r in good if r.get("kept_up")] or good
    overloaded = [r for r in good if r not in sustained]
    if len(sustained) < 3:
        return sustained, None, overloaded
    held = max(sustained, key=lambda r: r["readings_stored"])
    # points of the held-out size (the same load on more partitions) stay out of the fit too: it must extrapolate
    smaller = [r for r in sustained if r["readings_stored"] < 0.9 * held["readings_stored"]]
    if len(smaller) < 2:
        smaller = [r for r in sustained if r is not held]
    return smaller, held, overloaded


def validate(fits: dict[str, Fit], held: dict) -> dict:
    """Predicted vs measured CPU seconds of the held-out point, per component, and the one-host throughput limit."""
    out: dict = {"point": held["point"], "components": {}}
    for c, f in fits.items():  # every fitted quantity: CPU and memory of each component
        measured = held[f"{c}_cpu_s"]
        predicted = f.cpu_s(held["readings_stored"], solves(held), held.get("partitions", 1))
        rss, rss_predicted = held[f"{c}_rss_mb"], f.rss_mb(held["meters"], held.get("partitions", 1))
        out["components"][c] = {"measured_cpu_s": measured, "predicted_cpu_s": round(predicted, 3),
                                "error_pct": round(100 * (predicted - measured) / max(measured, 1e-9), 1),
                                "measured_rss_mb": rss, "predicted_rss_mb": round(rss_predicted, 1),
                                "rss_error_pct": round(100 * (rss_predicted - rss) / max(rss, 1e-9), 1)}
    fits = {c: f.per_reading_at(held["readings_stored"] / max(solves(held), 1e-9)) for c, f in fits.items()}
    limit = host_limit(fits)
    out["host_limit_per_s"] = round(limit["readings_per_s"], 0)
    out["measured_stored_per_s"] = held["stored_per_s"]
    out["measured_offered_per_s"] = held["offered_per_s"]
    out["predicted_stored_per_s"] = round(min(held["offered_per_s"], limit["readings_per_s"]), 0)
    out["stored_error_pct"] = round(100 * (out["predicted_stored_per_s"] - held["stored_per_s"])
                                    / max(held["stored_per_s"], 1e-9), 1)
    out["predicted_kept_up"] = held["offered_per_s"] <= limit["readings_per_s"]
    if "platform" in fits:  # M/M/1 for the one platform process: mean wait of an envelope
        f = fits["platform"]
        rho = held["offered_per_s"] * f.per_reading_s
        service_ms = ENVELOPE * f.per_reading_s * 1000
        out["platform_utilisation"] = round(rho, 3)
        out["predicted_wait_ms"] = round(service_ms / (1 - rho), 1) if rho < 1 else math.inf
        out["measured_latency_p50_ms"] = held.get("latency_p50_ms")
    out["measured_kept_up"] = bool(held.get("kept_up"))
    return out


def host_limit(fits: dict[str, Fit], cores: int = 2) -> dict:
    """Where one host with ``cores`` saturates: the first single-process limit or the shared-core limit."""
    per_process = {c: f.max_rate_per_core for c, f in fits.items()}
    shared = cores / max(sum(f.per_reading_s for f in fits.values()), 1e-12)
    first = min(per_process, key=per_process.get)  # type: ignore[arg-type]
    rate = min(shared, per_process[first])
    return {"readings_per_s": rate, "first": first if per_process[first] <= shared else "all cores (shared)",
            "per_process": per_process, "shared_cores": shared}


def project(fits: dict[str, Fit], rate: float, meters: int, bytes_per_reading: float) -> dict:
    """Instances, cores, memory, disk per day and M/M/1 envelope wait per component at ``rate`` readings/s."""
    comps = {}
    for c, f in fits.items():
        cost = f.per_reading_s
        busy = rate * cost  # cores of pure work
        n = max(1, math.ceil(busy / RHO_MAX))
        rho = busy / n
        service_ms = ENVELOPE * cost * 1000
        comps[c] = {"cpu_cores_busy": round(busy, 2), "instances": n, "utilisation": round(rho, 3),
                    "memory_gb": round(n * f.rss0_mb / 1024 + meters * f.rss_per_meter_kb / 1024 ** 2, 2),
                    "envelope_service_ms": round(service_ms, 2),
                    "envelope_wait_ms": round(service_ms / (1 - rho), 2) if rho < 1 else math.inf}
    first = max(fits, key=lambda c: fits[c].per_reading_s)
    return {"readings_per_s": rate, "meters": meters, "components": comps,
            "disk_gb_per_day": round(bytes_per_reading * rate * 86400 / 1e9, 1),
            "saturates_first": first}


def bytes_per_reading(rows: list[dict], interval_s: float) -> float:
    """Store growth per reading, median over the points whose sampling interval is closest to ``interval_s``.

    It depends on the interval: rollup rows (per meter, quantity and minute) are shared by fewer readings
    the longer the interval.
    """
    measured = [r for r in rows if r.get("readings_stored", 0) > 0 and "interval_s" in r]
    if not measured:
        return 0.0
    nearest = min(abs(math.log(r["interval_s"] / interval_s)) for r in measured)
    return float(np.median([r["bytes_per_reading"] for r in measured
                            if abs(math.log(r["interval_s"] / interval_s)) == nearest]))


def model(rows: list[dict]) -> dict:
    """Fit, validate on the held-out point, and project the targets."""
    fit_rows, held, overloaded = split(rows)
    fits = fit(fit_rows)
    measured = [r for r in rows if "error" not in r]  # store growth does not depend on load: use every point
    per_solve = float(np.median([r["readings_stored"] / max(solves(r), 1e-9) for r in fit_rows])) if fit_rows else 1.0
    spread = {c: f.per_reading_at(per_solve) for c, f in fits.items()}  # projections: fleets shaped like the fit
    return {
        "measured_inputs": {"fit_points": [r["point"] for r in fit_rows],
                            "fits": {c: asdict(f) for c, f in fits.items()},
                            "bytes_per_reading": {f"{i:g} s": bytes_per_reading(measured, i)
                                                  for i in sorted({r["interval_s"] for r in measured})}},
        "validation": _with_bytes(validate(fits, held), fit_rows, held) if held and fits else None,
        "overloaded_checks": [validate(fits, r) for r in overloaded] if fits else [],
        "readings_per_solve": round(per_solve, 1),
        "host_limit_2_cores": host_limit(spread) if fits else None,
        "projections": {name: project(spread, meters / interval, meters, bytes_per_reading(measured, interval))
                        for name, (meters, interval) in TARGETS.items()} if fits else {},
    }


def _with_bytes(v: dict, fit_rows: list[dict], held: dict) -> dict:
    """Store growth is a fitted quantity too: the fit points' bytes per reading against the held-out point's."""
    predicted, measured = bytes_per_reading(fit_rows, held["interval_s"]), held["bytes_per_reading"]
    return {**v, "bytes_per_reading": {"measured": measured, "predicted": round(predicted, 1),
                                       "error_pct": round(100 * (predicted - measured) / max(measured, 1e-9), 1)}}


def render(m: dict) -> str:
    """The model as Markdown: MEASURED inputs first, then PROJECTED numbers."""
    lines = ["## Measured inputs (fitted on: " + ", ".join(m["measured_inputs"]["fit_points"]) + ")", "",
             "| component | fixed CPU s | CPU µs / reading | CPU ms / grid solve | max readings/s per core "
             "| RSS base MB | RSS kB / meter |", "|---|---:|---:|---:|---:|---:|---:|"]
    for c, f in m["measured_inputs"]["fits"].items():
        solve = f"{f['per_solve_s'] * 1e3:.2f}" if f.get("per_solve_s") else "–"
        lines.append(f"| {c} | {f['fixed_s']:.2f} | {f['per_reading_s'] * 1e6:.2f} | {solve} | "
                     f"{Fit(**f).max_rate_per_core:,.0f} | {f['rss0_mb']:.0f} | {f['rss_per_meter_kb']:.2f} |")
    lines.append("\nStore growth per reading (median, by sampling interval): " + ", ".join(
        f"{k}: {v:.0f} B" for k, v in m["measured_inputs"]["bytes_per_reading"].items()) + ".")
    v = m.get("validation")
    if v:
        lines += ["", f"## Validation on the held-out point {v['point']}", "",
                  "| component | measured CPU s | predicted CPU s | error | measured RSS MB | predicted RSS MB "
                  "| error |", "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {c} | {x['measured_cpu_s']:.2f} | {x['predicted_cpu_s']:.2f} | {x['error_pct']:+.1f} % | "
                  f"{x['measured_rss_mb']:.0f} | {x['predicted_rss_mb']:.0f} | {x['rss_error_pct']:+.1f} % |"
                  for c, x in v["components"].items()]
        if "bytes_per_reading" in v:
            b = v["bytes_per_reading"]
            lines.append(f"\nStore growth: predicted {b['predicted']:.0f} B/reading, measured {b['measured']:.0f} "
                         f"({b['error_pct']:+.1f} %).")
        lines.append(f"\nPredicted one-host limit {v['host_limit_per_s']:,.0f} readings/s. The point offered "
                     f"{v['measured_offered_per_s']:,.0f}/s; predicted stored {v['predicted_stored_per_s']:,.0f}/s, "
                     f"measured {v['measured_stored_per_s']:,.0f}/s ({v['stored_error_pct']:+.1f} %); "
                     f"predicted kept up: {v['predicted_kept_up']}, measured: {v['measured_kept_up']}.")
        if "predicted_wait_ms" in v:
            lines.append(f"\nM/M/1 for the platform at ρ = {v['platform_utilisation']}: mean envelope wait "
                         f"{v['predicted_wait_ms']} ms predicted; probe latency p50 {v['measured_latency_p50_ms']} ms "
                         "measured.")
    for v in m.get("overloaded_checks", []):
        lines.append(f"\nOverloaded point {v['point']} (not fitted; outside the planning regime): offered "
                     f"{v['measured_offered_per_s']:,.0f}/s, predicted stored {v['predicted_stored_per_s']:,.0f}/s, "
                     f"measured {v['measured_stored_per_s']:,.0f}/s ({v['stored_error_pct']:+.1f} %); platform CPU "
                     f"predicted {v['components']['platform']['predicted_cpu_s']:.1f} s, measured "
                     f"{v['components']['platform']['measured_cpu_s']:.1f} s.")
    for name, p in m["projections"].items():
        lines += ["", f"## PROJECTED: {name} ({p['readings_per_s']:,.0f} readings/s)", "",
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
