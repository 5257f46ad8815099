"""Past readings in a point's store before its load starts: a database restore done by the study harness.

The ``history`` sweep key asks how the platform behaves when its database already holds days of data (the pilot's
lesson: queries slowed as the database grew). Before the point's platform process starts, this module opens the
point's (new, empty) SQLite store file with the platform's own store code (``gridloop.platform.store.open_store``)
and writes ``days`` of past data for the point's meters, ending one day before the point's clock starts (the
run's own accounting counts readings up to 6 h either side of its span: it must see only its own). It is a restore
of a database, not a simulation: no meter, DIA, broker or ingest worker is involved, and the values follow a
simple synthetic model (registers rise steadily, instantaneous quantities vary around a typical value).

What is written, exactly (``plan_history``), for the meters of a one-substation scenario (household meters
``m00001``..., heat ``dh001``..., water ``wm0001``..., gas ``gm0001``..., each with its kind's quantities, at its
scenario interval; the substation meter and blink detectors get no history):

* raw readings at the full rate over the whole history for the first ``raw_meters`` meters (the meter the point's
  queries ask first, then id order), as many whole meters as fit in ``RAW_ROWS_MAX`` readings; if not even the
  queried meter fits, its newest ``RAW_ROWS_MAX`` readings;
* the newest ``RECENT_RAW`` raw readings of every other meter (at least a B-tree page of each meter's readings,
  as a store that keeps raw data for a while has: ingest then appends to each meter's own page);
* raw readings go through the store's ``insert_readings``, so the store adds their 1m, 15m, 1h and 1d rollups as
  ingest would;
* before a meter's raw readings begin, the rollup buckets ingest would have written for its readings at the 15m,
  1h and 1d resolutions, all its quantities (restored through the store's ``restore_rollups``, which folds them
  in as ingest folds its own); those spans have no raw readings and no 1m buckets (30 days of 10 s readings of
  1,000 meters would be 259 M raw rows and 43 M 1-minute buckets per quantity).

Rows are written in key order, so the restored B-trees are denser than ones grown by ingest. A plan whose rows
exceed ``ROWS_MAX`` is refused before anything runs.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np

from gridloop.contract import Quantity
from gridloop.platform.envelope import Reading
from gridloop.platform.rollups import RESOLUTIONS, RollupRow
from gridloop.platform.store import open_store
from gridloop.scenario.model import Scenario, parse_duration

DAY_S = 86_400.0
GAP_S = DAY_S  # history ends this long before the point's clock start
RAW_ROWS_MAX = 1_000_000  # raw readings of whole-history meters at most per point
RECENT_RAW = 240  # newest raw readings of every other meter
ROWS_MAX = 25_000_000  # raw readings + rollup rows written directly, at most per point (~6 µs a row here)
DIRECT_RES = ("15m", "1h", "1d")  # resolutions written directly for meters without raw history
BATCH_READINGS = 100_000  # raw readings per insert_readings call (one transaction each)
BATCH_ROLLUPS = 500_000  # restored rollup rows per restore_rollups call


@dataclass(frozen=True)
class Series:
    """A synthetic series of one quantity: ``base`` ± ``spread`` (times a per-meter factor 0.5-1.5), rising
    ``per_h`` if a register."""

    quantity: Quantity
    base: float
    spread: float
    per_h: float = 0.0
    decimals: int = 1


# the quantity sets the simulator's meters report (gridloop.virtual_meters), in the order of their readings
Q = Quantity
KINDS: dict[str, tuple[Series, ...]] = {
    "household": (
        Series(Q.ENERGY_ACTIVE_IMPORT, 2e7, 0.0, per_h=500.0),
        Series(Q.ENERGY_ACTIVE_EXPORT, 0.0, 0.0),
        Series(Q.POWER_ACTIVE_TOTAL, 500.0, 400.0),
        *(Series(q, 232.0, 4.0) for q in (Q.VOLTAGE_L1, Q.VOLTAGE_L2, Q.VOLTAGE_L3)),
        *(Series(q, 170.0, 150.0) for q in (Q.POWER_ACTIVE_L1, Q.POWER_ACTIVE_L2, Q.POWER_ACTIVE_L3)),
    ),
    "heat": (
        Series(Q.HEATING_ENERGY, 1e8, 0.0, per_h=20_000.0),
        Series(Q.HEATING_VOLUME, 5e3, 0.0, per_h=0.5, decimals=3),
        Series(Q.HEATING_FLOWRATE, 500.0, 400.0),
        Series(Q.HEATING_POWER, 20_000.0, 15_000.0),
    ),
    "water": (
        Series(Q.WATER_VOLUME, 500.0, 0.0, per_h=0.02, decimals=3),
        Series(Q.WATER_FLOWRATE, 0.05, 0.05, decimals=3),
    ),
    "gas": (Series(Q.GAS_VOLUME, 2e3, 0.0, per_h=0.1, decimals=3),),
}


@dataclass(frozen=True)
class HistoryPlan:
    """What a fill writes: per meter (id, kind, interval ms), raw readings from ``raw_from`` on, rollups before."""

    days: float
    start_ms: int  # first instant of history
    end_ms: int  # history ends just before this: GAP_S before the point's clock start
    meters: tuple[tuple[str, str, int], ...]  # the queried meter first, then id order
    raw_from: tuple[int, ...]  # per meter: raw readings from here on, rollups only before
    raw_meters: int  # how many (the first) meters have raw readings over the whole history (0: the first is cut)
    raw_rows: int  # raw readings written
    rollup_rows: int  # rollup rows written directly (those insert_readings adds are not counted)

    @property
    def rows(self) -> int:
        return self.raw_rows + self.rollup_rows


def parse_history(text: str) -> float:
    """History length in seconds: a duration like '7d' or '12h', or zero ('0', '0d')."""
    m = re.fullmatch(r"\s*0*\.?0*\s*([a-z]*)\s*", text)
    if m and re.search(r"0", text):
        if m.group(1):
            parse_duration("1" + m.group(1))  # still a known unit
        return 0.0
    return parse_duration(text)


def meters_of(s: Scenario) -> list[tuple[str, str, int]]:
    """(device id, kind, interval ms) of the scenario's meters, in id order."""
    u = s.meters.utility
    out = [(f"m{i + 1:05d}", "household", s.meters.interval) for i in range(s.households.count)]
    out += [(f"dh{i + 1:03d}", "heat", u.heat_interval) for i in range(u.heat_meters)]
    out += [(f"wm{i + 1:04d}", "water", u.water_interval) for i in range(u.water_meters)]
    out += [(f"gm{i + 1:04d}", "gas", u.gas_interval) for i in range(u.gas_meters)]
    return sorted((dev, kind, round(interval * 1000)) for dev, kind, interval in out)


def queried_meter(s: Scenario) -> tuple[str, str]:
    """The meter (and quantity) whose queries a point times: the first household meter, else the first water meter.

    ``households.count`` unset means every household load of the grid has a meter: the first one is there too.
    """
    from gridloop.engine.substation_unit import substation_prefix

    first = substation_prefix(0, s.grid.copies)  # a run of several substations names its devices s001-...
    if s.households.count or not s.meters.utility.water_meters:
        return first + "m00001", Q.ENERGY_ACTIVE_IMPORT.value
    return first + "wm0001", Q.WATER_VOLUME.value


def _count(start_ms: int, end_ms: int, interval_ms: int) -> int:
    """Readings at start, start + interval, ... before end."""
    return max(0, -(-(end_ms - start_ms) // interval_ms))


def _buckets(start_ms: int, end_ms: int, interval_ms: int, width: int) -> int:
    n = _count(start_ms, end_ms, interval_ms)
    if n == 0:
        return 0
    last = start_ms + (n - 1) * interval_ms
    return (last - last % width - (start_ms - start_ms % width)) // width + 1


def plan_history(s: Scenario, history_s: float, raw_rows_max: int | None = None,
                 recent_raw: int | None = None) -> HistoryPlan:
    """The rows a fill of ``history_s`` seconds writes for the point's scenario."""
    raw_rows_max = RAW_ROWS_MAX if raw_rows_max is None else raw_rows_max
    recent_raw = RECENT_RAW if recent_raw is None else recent_raw
    end_ms = int(s.clock.start.timestamp() * 1000) - round(GAP_S * 1000)
    start_ms = end_ms - round(history_s * 1000)
    meters = meters_of(s)
    first = queried_meter(s)[0]
    meters.sort(key=lambda m: m[0] != first)
    raw_from: list[int] = []
    raw_meters = whole_rows = raw_rows = rollups = 0
    for _, kind, interval in meters if history_s > 0 else ():
        n = _count(start_ms, end_ms, interval)
        if len(raw_from) == raw_meters and whole_rows + n <= raw_rows_max:  # the whole history raw
            keep = n
            raw_meters += 1
            whole_rows += n
        elif not raw_from:  # the queried meter, too long to keep whole: its newest readings
            keep = raw_rows_max
        else:
            keep = min(n, recent_raw)
        lo = start_ms + (n - keep) * interval  # on the meter's own time grid
        raw_from.append(lo)
        raw_rows += keep
        rollups += len(KINDS[kind]) * sum(_buckets(start_ms, lo, interval, RESOLUTIONS[r]) for r in DIRECT_RES)
    return HistoryPlan(history_s / DAY_S, start_ms, end_ms, tuple(meters) if history_s > 0 else (), tuple(raw_from),
                       raw_meters, raw_rows, rollups)


def check_plan(plan: HistoryPlan, rows_max: int = ROWS_MAX) -> None:
    if plan.rows > rows_max:
        raise ValueError(f"{plan.days:g} days of history for {len(plan.meters):,} meters would write "
                         f"{plan.rows:,} rows; at most {rows_max:,}: sweep fewer days or meters")


def _factors(dev: str, kind: str) -> np.random.Generator:
    return np.random.default_rng([sum(dev.encode()) * 1_000_003 + len(dev), len(kind)])


def _values(q: Series, scale: float, t_ms: np.ndarray, start_ms: int, rng: np.random.Generator) -> np.ndarray:
    hours = (t_ms - start_ms) / 3_600_000
    base = q.base * scale
    wobble = q.spread * scale * (2 * rng.random(len(t_ms)) - 1)
    v = base + q.per_h * scale * hours if q.per_h else base + wobble
    return np.round(np.maximum(v, 0.0), q.decimals)


def _raw(dev: str, kind: str, interval: int, lo: int, hi: int, origin: int, scale: float,
         rng: np.random.Generator):
    """One meter's raw readings over [lo, hi), in chunks of at most BATCH_READINGS."""
    qs = KINDS[kind]
    names = [q.quantity.value for q in qs]  # plain str keys, as decoded telemetry has
    n = _count(lo, hi, interval)
    for k0 in range(0, n, BATCH_READINGS):
        ts = lo + np.arange(k0, min(n, k0 + BATCH_READINGS), dtype=np.int64) * interval
        cols = np.stack([_values(q, scale, ts, origin, rng) for q in qs], axis=1).tolist()
        yield [Reading(dev, t, None, dict(zip(names, row, strict=True))) for t, row in zip(ts.tolist(), cols,
                                                                                           strict=True)]


def _bucket_frame(lo: int, hi: int, interval: int, width: int) -> tuple[np.ndarray, ...]:
    """Per bucket of ``width`` over readings at lo, lo + interval, ... < hi: start, n, first ts, last ts."""
    n = _count(lo, hi, interval)
    first_b = lo - lo % width
    nb = _buckets(lo, hi, interval, width)
    b = first_b + np.arange(nb, dtype=np.int64) * width
    # index of the first reading at or after each bucket start, and one past the last before its end
    k_lo = np.clip(-(-(b - lo) // interval), 0, n)
    k_hi = np.clip(-(-(b + width - lo) // interval), 0, n)
    keep = k_hi > k_lo
    b, k_lo, k_hi = b[keep], k_lo[keep], k_hi[keep]
    return b, k_hi - k_lo, lo + k_lo * interval, lo + (k_hi - 1) * interval


def _rollups(dev: str, kind: str, interval: int, lo: int, hi: int, scale: float, rng: np.random.Generator,
             tenant: str, frames: dict) -> list[RollupRow]:
    """Rollup rows (15m, 1h, 1d, every quantity) of one meter's readings over [lo, hi), in key order."""
    rows: list[RollupRow] = []
    for q in sorted(KINDS[kind], key=lambda q: q.quantity.value):
        for res in DIRECT_RES:
            width = RESOLUTIONS[res]
            key = (lo, hi, interval, width)
            if key not in frames:
                frames[key] = _bucket_frame(lo, hi, interval, width)
            b, n, fts, lts = frames[key]
            fv, lv = _values(q, scale, fts, lo, rng), _values(q, scale, lts, lo, rng)
            if q.per_h:  # a register: first and last bound the bucket, the mean lies between
                mean, vmin, vmax = (fv + lv) / 2, fv, lv
            else:
                mean = _values(q, scale, (fts + lts) // 2, lo, rng)
                vmin = np.minimum(np.minimum(fv, lv), mean) - np.where(n > 2, q.spread * scale * 0.1, 0)
                vmax = np.maximum(np.maximum(fv, lv), mean) + np.where(n > 2, q.spread * scale * 0.1, 0)
                mean = np.where(n == 1, fv, mean)
            name = q.quantity.value
            rows.extend(zip(repeat(tenant), repeat(dev), repeat(name), repeat(width), b.tolist(), n.tolist(),
                            (mean * n).tolist(), vmin.tolist(), vmax.tolist(), fts.tolist(), fv.tolist(),
                            lts.tolist(), lv.tolist()))
    return rows


def fill_history(store_path: Path, tenant: str, plan: HistoryPlan) -> dict[str, float]:
    """Write the plan's rows into the SQLite store file (before any platform process opens it).

    Returns raw readings and rollup rows written (the rollups of raw readings included), seconds taken and the
    store's bytes.
    """
    t0 = time.perf_counter()
    store = open_store(f"sqlite:///{store_path}")
    raw = 0
    frames: dict = {}
    rollups: list[RollupRow] = []
    readings: list[Reading] = []

    def write_rollups() -> None:
        store.restore_rollups(rollups)  # folded in as ingest would, in large transactions
        rollups.clear()

    def write_readings() -> None:
        nonlocal raw
        raw += store.insert_readings(tenant, readings)  # one transaction
        readings.clear()

    try:
        before = store.count_rollups(tenant)
        order = sorted(range(len(plan.meters)), key=lambda i: plan.meters[i][0])  # key order: sequential B-trees
        for i in order:
            dev, kind, interval = plan.meters[i]
            rng = _factors(dev, kind)
            scale = 0.5 + rng.random()
            lo_raw = plan.raw_from[i]
            if lo_raw > plan.start_ms:
                rollups.extend(_rollups(dev, kind, interval, plan.start_ms, lo_raw, scale, rng, tenant, frames))
                if len(rollups) >= BATCH_ROLLUPS:
                    write_rollups()
            for chunk in _raw(dev, kind, interval, lo_raw, plan.end_ms, plan.start_ms, scale, rng):
                readings.extend(chunk)
                if len(readings) >= BATCH_READINGS:
                    write_readings()
        if rollups:
            write_rollups()
        if readings:
            write_readings()
        store.materialize_rollups(tenant, plan.end_ms)  # a restore hands over a store with every bucket folded
        written = store.count_rollups(tenant) - before
    finally:
        store.close()
    size = sum(p.stat().st_size for p in store_path.parent.glob(store_path.name + "*") if p.is_file())
    return {"history_raw_rows": raw, "history_rollup_rows": written,
            "history_fill_s": round(time.perf_counter() - t0, 1), "history_db_bytes": size}
