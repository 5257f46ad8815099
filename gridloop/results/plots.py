"""PNG plots of a run: feeder voltages and loading over the simulated time, one feeder or every substation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def pyplot():
    """matplotlib's pyplot on the Agg backend, imported when a run draws its first plot (it takes ~0.4 s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_feeder_voltages(vm: pd.DataFrame, loading: pd.DataFrame, path: Path, title: str) -> None:
    """Every bus's voltage (thin lines) with the min/max band, and the line loading below."""
    plt = pyplot()
    fig, (ax_v, ax_l) = plt.subplots(2, 1, figsize=(11, 7), sharex=True, height_ratios=[3, 2])
    ax_v.xaxis.axis_date(vm.index.tz)  # dates in the run's time zone, as matplotlib shows aware timestamps
    t = _date_numbers(vm.index)  # converted once: per line, matplotlib would convert every timestamp again
    energized = vm.where(vm > 0)
    ax_v.plot(t, energized.to_numpy(), color="tab:blue", alpha=0.25, linewidth=0.7)
    ax_v.plot(t, energized.min(axis=1).to_numpy(), color="tab:red", linewidth=1.5, label="lowest bus")
    ax_v.plot(t, energized.max(axis=1).to_numpy(), color="tab:green", linewidth=1.5, label="highest bus")
    lo, hi = float(energized.min().min()), float(energized.max().max())
    margin = max(0.005, 0.1 * (hi - lo))
    ax_v.set_ylim(lo - margin, hi + margin)
    for limit in (0.9, 1.1):  # EN 50160 band, drawn only where the data come near it
        if lo - margin < limit < hi + margin:
            ax_v.axhline(limit, color="grey", linestyle="--", linewidth=1, label=f"EN 50160 limit {limit} pu")
    _voltage_axis(ax_v, t, (vm <= 0).sum(axis=1), "de-energised buses", title)
    t_l = t if loading.index.equals(vm.index) else _date_numbers(loading.index)
    ax_l.plot(t_l, loading.to_numpy(), color="tab:orange", alpha=0.3, linewidth=0.7)
    ax_l.plot(t_l, loading.max(axis=1).to_numpy(), color="tab:red", linewidth=1.5, label="most loaded line")
    ax_l.set_ylabel("line loading (%)")
    ax_l.set_xlabel(f"simulated time ({vm.index.tz})")
    ax_l.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_substations(vm: dict[str, pd.DataFrame], loading: dict[str, pd.DataFrame], path: Path, title: str) -> None:
    """A run of several substations at a glance: each substation's lowest and highest energised bus voltage
    (thin lines) within the whole run's band, and each one's most loaded line below."""
    plt = pyplot()
    fig, (ax_v, ax_l) = plt.subplots(2, 1, figsize=(11, 7), sharex=True, height_ratios=[3, 2])
    first = next(iter(vm.values()))
    ax_v.xaxis.axis_date(first.index.tz)
    t = _date_numbers(first.index)
    lows = pd.DataFrame({name: v.where(v > 0).min(axis=1) for name, v in vm.items()})
    highs = pd.DataFrame({name: v.where(v > 0).max(axis=1) for name, v in vm.items()})
    ax_v.plot(t, lows.to_numpy(), color="tab:red", alpha=0.35, linewidth=0.7)
    ax_v.plot(t, highs.to_numpy(), color="tab:green", alpha=0.35, linewidth=0.7)
    ax_v.fill_between(t, lows.min(axis=1).to_numpy(), highs.max(axis=1).to_numpy(), color="tab:blue", alpha=0.1,
                      label=f"all {len(vm)} substations' buses")
    ax_v.plot([], [], color="tab:red", label="lowest bus, per substation")
    ax_v.plot([], [], color="tab:green", label="highest bus, per substation")
    _voltage_axis(ax_v, t, sum((v <= 0).sum(axis=1) for v in vm.values()), "de-energised buses, all substations",
                  title)
    most = pd.DataFrame({name: frame.max(axis=1) for name, frame in loading.items()})
    ax_l.plot(_date_numbers(most.index), most.to_numpy(), color="tab:orange", alpha=0.5, linewidth=0.7)
    ax_l.set_ylabel("most loaded line (%)")
    ax_l.set_xlabel(f"simulated time ({first.index.tz})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _voltage_axis(ax_v, t: np.ndarray, dead: pd.Series, dead_label: str, title: str) -> None:
    """The voltage panel's labels, and the count of de-energised buses shaded behind it when there are any."""
    if dead.any():
        ax_d = ax_v.twinx()
        ax_d.fill_between(t, 0, dead.to_numpy(), step="post", color="black", alpha=0.15)
        ax_d.set_ylabel(dead_label)
    ax_v.set_ylabel("voltage (pu)")
    ax_v.set_title(title)
    ax_v.legend(loc="lower left", fontsize=8)


def _date_numbers(index: pd.Index) -> np.ndarray:
    """matplotlib's date numbers of a time index (UTC instants; the axis shows them in its time zone)."""
    import matplotlib.dates as mdates

    times = pd.DatetimeIndex(index)
    if times.tz is not None:
        times = times.tz_convert("UTC").tz_localize(None)
    return mdates.date2num(times.to_numpy())
