"""Scenario KPIs from ground truth: what the grid did, against what it would have done without the services.

The baseline transformer power adds back, step by step, the load the controller curtailed and takes out
the battery's power; losses that would differ are neglected (a fraction of a percent on LV feeders).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


def time_index(unix_ms: list[int]) -> pd.DatetimeIndex:
    """UTC timestamps of steps recorded as Unix ms (no pandas per step)."""
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(unix_ms, dtype=np.int64), unit="ms", utc=True), name="time")


@dataclass
class KpiRecorder:
    """Per-step transformer power, curtailed power and battery power; turned into KPIs at the end."""

    step_s: float
    times: list[int] = field(default_factory=list)  # Unix ms of each step
    trafo_kw: list[float] = field(default_factory=list)
    curtailed_kw: list[float] = field(default_factory=list)
    battery_kw: list[float] = field(default_factory=list)

    def record(self, when: int, trafo_kw: float, curtailed_kw: float, battery_kw: float) -> None:
        self.times.append(when)
        self.trafo_kw.append(trafo_kw)
        self.curtailed_kw.append(curtailed_kw)
        self.battery_kw.append(battery_kw)

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame({"trafo_kw": self.trafo_kw, "curtailed_kw": self.curtailed_kw,
                           "battery_kw": self.battery_kw}, index=time_index(self.times))
        df["baseline_kw"] = df.trafo_kw + df.curtailed_kw - df.battery_kw
        return df

    def kpis(self, limit_kw: float | None, battery_capacity_kwh: float | None) -> dict:
        df = self.frame()
        if df.empty:
            return {}
        h = self.step_s / 3600.0
        out = {
            "peak_kw": round(float(df.trafo_kw.max()), 3),
            "baseline_peak_kw": round(float(df.baseline_kw.max()), 3),
            "peak_reduction_kw": round(float(df.baseline_kw.max() - df.trafo_kw.max()), 3),
            "energy_curtailed_kwh": round(float(df.curtailed_kw.clip(lower=0).sum() * h), 4),
            "energy_rebounded_kwh": round(float(-df.curtailed_kw.clip(upper=0).sum() * h), 4) + 0.0,
            "rebound_peak_kw": round(float((-df.curtailed_kw).clip(lower=0).max()), 3),
        }
        if limit_kw is not None:
            out["limit_kw"] = limit_kw
            out["minutes_above_limit"] = round(float((df.trafo_kw > limit_kw).sum() * self.step_s / 60), 2)
            out["baseline_minutes_above_limit"] = round(float((df.baseline_kw > limit_kw).sum() * self.step_s / 60), 2)
        if battery_capacity_kwh:
            charged = float(df.battery_kw.clip(lower=0).sum() * h)
            discharged = float(-df.battery_kw.clip(upper=0).sum() * h)
            out["battery_throughput_kwh"] = round(charged + discharged, 4)
            out["battery_equivalent_cycles"] = round((charged + discharged) / (2 * battery_capacity_kwh), 4)
        return out


def write_report(df: pd.DataFrame, kpis: dict, run_dir: Path, title: str) -> list[str]:
    """A short Markdown report with the transformer power with and without the services."""
    from gridloop.results.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.plot(df.index, df.baseline_kw, color="grey", linewidth=1, label="without services (baseline)")
    ax.plot(df.index, df.trafo_kw, color="tab:blue", linewidth=1.2, label="with services")
    if (df.battery_kw != 0).any():
        ax.plot(df.index, df.battery_kw, color="tab:green", linewidth=0.8, label="battery (+ charging)")
    if "limit_kw" in kpis:
        ax.axhline(kpis["limit_kw"], color="tab:red", linestyle="--", label="limit")
    ax.set_ylabel("transformer power (kW)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(run_dir / "transformer_power.png", dpi=110)
    plt.close(fig)
    lines = [f"# {title}", "", "| KPI | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in kpis.items()]
    if "limit_kw" in kpis:
        over = df.trafo_kw > kpis["limit_kw"]
        starts = df.index[over & ~over.shift(1, fill_value=False)]
        ends = df.index[over & ~over.shift(-1, fill_value=False)]
        lines += ["", "## Where the limit could not be kept", ""]
        lines += [f"- {a:%H:%M} – {b:%H:%M}: up to {df.trafo_kw[a:b].max():.1f} kW" for a, b in zip(starts, ends,
                                                                                                strict=True)]
        if not len(starts):
            lines.append("- nowhere: the transformer stayed under its limit all run")
    lines += ["", "![transformer power](transformer_power.png)", ""]
    (run_dir / "report.md").write_text("\n".join(lines))
    return ["report.md", "transformer_power.png"]


def peak_to_average(series: np.ndarray) -> float:
    return float(series.max() / series.mean()) if series.size and series.mean() else float("nan")
