"""Documentation figures: a day of 1 s load for a few homes, the 500-home aggregate, heat against BDEW.

Run: python -m gridloop.profiles.plots docs/img            (all figures)
     python -m gridloop.profiles.plots docs/img heat       (only the heat/BDEW figure)
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gridloop.profiles.fleet import HouseholdFleet
from gridloop.profiles.params import HouseholdParams

START = pd.Timestamp("2026-01-15T00:00", tz="Europe/Stockholm")


def homes_1s(out: Path, n_show: int = 4) -> None:
    """A winter weekday at 1 s for a few homes, with the per-phase split of a three-phase home."""
    fleet = HouseholdFleet(n_homes=12, start=START, step_s=1, seed=7, params=HouseholdParams())
    p, _ = fleet.run(86400)
    hours = np.arange(86400) / 3600.0
    fig, axes = plt.subplots(n_show, 1, figsize=(11, 2.0 * n_show), sharex=True)
    for i, ax in enumerate(axes):
        ax.plot(hours, p[:, i] / 1000.0, lw=0.5)
        kind = "3-phase" if fleet.three_phase[i] else f"1-phase L{fleet.phase[i] + 1}"
        ax.set_ylabel("kW")
        ax.set_title(f"home {i} ({fleet.households.size[i]} occupants, {kind}), "
                     f"{p[:, i].mean() * 24 / 1000:.1f} kWh/day", fontsize=9)
    axes[-1].set_xlabel("hour of day (2026-01-15, 1 s resolution)")
    axes[-1].set_xlim(0, 24)
    fig.tight_layout()
    fig.savefig(out / "profiles-homes-1s.png", dpi=110)
    plt.close(fig)
    # zoom on the evening of the first home
    fig, ax = plt.subplots(figsize=(11, 3))
    sl = slice(17 * 3600, 20 * 3600)
    ax.plot(hours[sl], p[sl, 0], lw=0.6, label="1 s")
    m = p[sl, 0].reshape(-1, 60).mean(1)
    ax.step(hours[sl][::60], m, where="post", lw=1.2, label="1 min mean")
    ax.set_xlabel("hour of day")
    ax.set_ylabel("W")
    ax.legend()
    ax.set_title("home 0, 17:00-20:00: thermostat cycling, compressor inrush, 1 s vs 1 min", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "profiles-zoom-1s.png", dpi=110)
    plt.close(fig)


def aggregate_500(out: Path) -> None:
    """Aggregate of 500 homes at 1 min for one winter and one summer week day, with P and Q."""
    fig, ax = plt.subplots(figsize=(11, 3.6))
    for date, colour in (("2026-01-15", "C0"), ("2026-07-15", "C1")):
        fleet = HouseholdFleet(n_homes=500, start=pd.Timestamp(date, tz="Europe/Stockholm"), step_s=60, seed=7)
        p, q = fleet.run(1440)
        hours = np.arange(1440) / 60.0
        ax.plot(hours, p.mean(1), color=colour, label=f"P mean per home, {date}")
        ax.plot(hours, q.mean(1), color=colour, ls=":", label=f"Q mean per home, {date}")
    ax.set_xlim(0, 24)
    ax.set_xlabel("hour of day (1 min)")
    ax.set_ylabel("W / var per home")
    ax.legend(fontsize=8)
    ax.set_title("500 homes, 2,700 kWh/yr class", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "profiles-aggregate-500.png", dpi=110)
    plt.close(fig)


def pv_ev_500(out: Path) -> None:
    """500 homes with 40 % PV and 20 % EVs on three summer days (net P at 1 min)."""
    params = HouseholdParams(pv_share=0.4, ev_share=0.2)
    fig, ax = plt.subplots(figsize=(11, 3.6))
    for k, date in enumerate(("2026-06-14", "2026-06-15", "2026-06-16")):
        fleet = HouseholdFleet(n_homes=500, start=pd.Timestamp(date, tz="Europe/Stockholm"), step_s=60, seed=7,
                               params=params)
        p = np.empty(1440)
        pv = np.empty(1440)
        for i in range(1440):
            p[i] = fleet.step()[0].mean()
            pv[i] = fleet.last_pv_w().mean()
        hours = np.arange(1440) / 60.0
        ax.plot(hours, p, color=f"C{k}", label=f"net P per home, {date}")
        ax.plot(hours, -pv, color=f"C{k}", ls=":", lw=0.8, label=f"- PV per home, {date}")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlim(0, 24)
    ax.set_xlabel("hour of day (1 min)")
    ax.set_ylabel("W per home")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("500 homes, 40 % with PV (mean 4 kWp), 20 % with an EV", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "profiles-pv-ev-500.png", dpi=110)
    plt.close(fig)


def heat_year(out: Path) -> dict[str, float]:
    """30 district-heated buildings over 2026: daily heat against BDEW MFH, and a winter and a summer weekday."""
    from gridloop.profiles.heat_check import bdew_heat, correlations, year_of_heat

    y = year_of_heat(2026, n=30, seed=1)
    ref = bdew_heat(y, "MFH", building_class=1)
    corr = correlations(y, ref)
    total = pd.Series(y.total_w.sum(axis=1) / 1e6, index=y.index)  # MW, hourly means
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [2, 1]})
    ax.plot(total.resample("D").sum().index, total.resample("D").sum(), lw=1.0, label="gridloop, 30 buildings")
    ax.plot(ref.resample("D").sum().index, ref.resample("D").sum() / 1000, lw=1.0, ls="--",
            label="BDEW MFH (demandlib), same temperatures and annual energy")
    ax.set_ylabel("MWh/day")
    t = ax.twinx()
    t.plot(total.resample("D").sum().index, pd.Series(y.temperature_c, index=y.index).resample("D").mean(),
           color="grey", lw=0.5)
    t.set_ylabel("daily mean outdoor °C", color="grey")
    ax.legend(fontsize=8, loc="upper center")
    ax.set_title(f"daily heat 2026: r = {corr['daily']:.3f} (target >= 0.95)", fontsize=9)
    hours = np.arange(24)
    for date, colour in (("2026-01-21", "C0"), ("2026-07-22", "C1")):
        sel = y.index.normalize() == pd.Timestamp(date)
        space, water = y.space_w[sel].sum(axis=1) / 1000, y.water_w[sel].sum(axis=1) / 1000
        ax2.plot(hours, space + water, color=colour, label=f"total {date}")
        ax2.plot(hours, water, color=colour, ls=":", label=f"hot water {date}")
        ax2.plot(hours, ref[sel].to_numpy(), color=colour, ls="--", lw=0.8, label=f"BDEW MFH {date}")
    ax2.set_yscale("log")
    ax2.set_xlabel("hour of day")
    ax2.set_ylabel("kW (30 buildings)")
    ax2.legend(fontsize=7)
    ax2.set_title(f"winter-weekday hour shape: r = {corr['winter_weekday_hourly']:.3f} (target >= 0.9)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "profiles-heat-bdew.png", dpi=110)
    plt.close(fig)
    return corr


def main(argv: list[str]) -> None:
    out = Path(argv[0] if argv else "docs/img")
    out.mkdir(parents=True, exist_ok=True)
    if argv[1:] == ["heat"]:
        print(heat_year(out))
        return
    homes_1s(out)
    aggregate_500(out)
    pv_ev_500(out)
    heat_year(out)


if __name__ == "__main__":
    main(sys.argv[1:])
