"""Issue #16 realism statistics of gridloop.profiles, and the docs figure (one home at 1 s and 1 min).

600-home fleets (seed 1, 2,700 kWh/yr class, Stockholm) over 28 days at 1 min in January and July; the
per-home criteria on every 20th home (30 homes), BDEW H0 correlation (15 min, weekdays / weekends) and
ADMD on the whole fleet. Prints a markdown table and writes docs/img/profiles-realism.png.

Run: PYTHONPATH=$PWD .venv/bin/python benchmarks/profiles_realism.py [docs/img]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gridloop.profiles import HouseholdFleet
from gridloop.profiles.realism import (
    ADMD_RANGE_KW,
    LAG1_RANGE,
    MAX_NO_CHANGE,
    P90_RANGE,
    PEAK_RANGE,
    HomeStats,
    admd_kw,
    h0_correlations,
    month_at_1min,
)

MONTHS = {"January": "2026-01-05", "July": "2026-07-06"}
ROWS = [
    ("lag-1 autocorrelation", "lag1", f"{LAG1_RANGE[0]:.2f}–{LAG1_RANGE[1]:.2f}"),
    ("share of 1-min intervals with no change (< 1 W)", "no_change", f"≤ {MAX_NO_CHANGE} (real 0.15–0.3)"),
    ("  same, changes < 5 W counted as none", "no_change_5w", "(info)"),
    ("P90 of abs(1-min change) / mean", "p90_rel", f"{P90_RANGE[0]:.2f}–{P90_RANGE[1]:.2f} (real 0.16)"),
    ("peak / mean", "peak_mean", f"{PEAK_RANGE[0]:.0f}–{PEAK_RANGE[1]:.0f}"),
]


def measure() -> tuple[list[list[str]], dict[str, HomeStats]]:
    """The statistics table (criterion, target, then median and pass share per month) and the raw stats."""
    table = [[name, target] for name, _, target in ROWS]
    extra: list[list[str]] = [["homes passing all four", "≥ 0.8"]]
    extra += [[f"H0 correlation, {d}", "≥ 0.9"] for d in ("weekdays", "weekends", "Saturdays", "Sundays")]
    extra += [["ADMD of 600 homes at 1 min (kW)", f"{ADMD_RANGE_KW[0]}–{ADMD_RANGE_KW[1]}"]]
    stats = {}
    for month, start in MONTHS.items():
        sample, agg = month_at_1min(start, n_homes=600, days=28, seed=1, n_sample=30)
        s = HomeStats.of(sample)
        stats[month] = s
        ok = s.passes()
        for row, (_, key, _) in zip(table, ROWS, strict=True):
            v = getattr(s, key)
            share = f"{ok[key].mean():.0%}" if key in ok else "–"
            row += [f"{np.median(v):.3f} ({v.min():.3f}–{v.max():.3f})", share]
        h0 = h0_correlations(agg, start)
        extra[0] += [f"{s.pass_all().mean():.0%}", ""]
        for row, key in zip(extra[1:5], ("weekday", "weekend", "saturday", "sunday"), strict=True):
            row += [f"{h0[key]:.3f}", ""]
        extra[5] += [f"{admd_kw(agg):.2f}", ""]
    return table + extra, stats


def one_home_1s(home: int = 0, day: str = "2026-01-15") -> np.ndarray:
    """One day at 1 s of one home of the same 600-home fleet (same seed: same behaviour as at 1 min)."""
    fleet = HouseholdFleet(600, pd.Timestamp(day, tz="Europe/Stockholm"), step_s=1, seed=1)
    out = np.empty(86400)
    for i in range(86400):
        out[i] = fleet.step()[0][home]
    return out


def figure(out: Path, table: list[list[str]], p1s: np.ndarray, jan: HomeStats) -> None:
    fig = plt.figure(figsize=(17, 7.5))
    gs = fig.add_gridspec(2, 2, width_ratios=[1.0, 1.15])
    hours = np.arange(86400) / 3600.0
    p1m = p1s.reshape(-1, 60).mean(axis=1)
    ax = fig.add_subplot(gs[0, 0])
    ax.step(hours[::60], p1m, where="post", lw=1.2, color="tab:orange", label="1 min mean")
    ax.plot(hours, p1s, lw=0.4, color="tab:blue", alpha=0.8, label="1 s")
    ax.set_xlim(0, 24)
    ax.set_ylabel("W")
    ax.set_title(f"home 0 of 600, 2026-01-15; its January statistics: lag-1 {jan.lag1[0]:.3f}, no change "
                 f"{jan.no_change[0]:.2f},\nP90/mean {jan.p90_rel[0]:.2f}, peak/mean {jan.peak_mean[0]:.1f}",
                 fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    ax = fig.add_subplot(gs[1, 0])
    sl = slice(17 * 3600, 19 * 3600)
    ax.step(hours[sl][::60], p1m[17 * 60 : 19 * 60], where="post", lw=1.6, color="tab:orange", label="1 min mean")
    ax.plot(hours[sl], p1s[sl], lw=0.6, color="tab:blue", label="1 s")
    ax.set_xlabel("hour of day")
    ax.set_ylabel("W")
    ax.set_title("17:00–19:00: drifting always-on load, compressor, cooking, kettle", fontsize=9)
    ax = fig.add_subplot(gs[:, 1])
    ax.axis("off")
    cells = [[r[0], r[1], r[2], r[3], r[4], r[5]] for r in table]
    tab = ax.table(cellText=cells, colLabels=["criterion", "target", "January median (range)", "pass",
                                             "July median (range)", "pass"], loc="center", cellLoc="left")
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)
    tab.auto_set_column_width(list(range(6)))
    tab.scale(1.0, 1.6)
    ax.set_title("30 of 600 homes, 28 days at 1 min (seed 1); H0 and ADMD on all 600", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "profiles-realism.png", dpi=110)
    plt.close(fig)


def main() -> None:
    table, stats = measure()
    print("| criterion | target | January median (range) | pass | July median (range) | pass |")
    print("|---|---|---|---|---|---|")
    for r in table:
        print("| " + " | ".join(r) + " |")
    if len(sys.argv) > 1:
        out = Path(sys.argv[1])
        out.mkdir(parents=True, exist_ok=True)
        figure(out, table, one_home_1s(), stats["January"])
        print(f"wrote {out / 'profiles-realism.png'}")


if __name__ == "__main__":
    main()
