"""Ingest rate as the SQLite store grows, against a small store measured in the same minutes (issue #15: growth).

The large store is built through the platform's own write path: ``SqliteStore.insert_readings`` (what an ingest
worker calls for a batch) with its counters, and the rollups folded by ingest's own ``RollupSchedule`` (data-clock
mark, 2-minute margin) after every ``--fold-every`` batches. Readings: the 9 quantities a home meter sends,
``--meters`` meters at 1 Hz in time order, ``--batch`` readings per transaction (a saturated ingest worker writes
200 envelopes of 500 readings at once).

At each checkpoint the rate is measured in windows of ``--fold-every`` batches and one fold, alternating with the
same windows written into a fresh copy of a small reference store (the big store's own first ``BASE_BATCHES``
batches, copied once: the same state of fold mark and counters, so the windows do the same work), ``--rounds``
times. The machine is shared: the figure to read is rate(big) / rate(reference) per checkpoint, and the growth
ratio = that ratio at the last checkpoint / that ratio at the first (the base size, where both stores are equal).
Queries that should not grow are timed at each checkpoint on both stores, in-process through the store API.
Usage: python benchmarks/store_growth.py [--readings 100000000] [--dir DIR] [--keep] [--profile]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from latency import p95_ms  # benchmarks/latency.py (the script's own folder is on sys.path)

from gridloop.contract import Quantity as Q
from gridloop.platform.envelope import Reading
from gridloop.platform.rollup_schedule import RollupSchedule
from gridloop.platform.store.base import DeviceRecord
from gridloop.platform.store.sqlite import SqliteStore

TENANT = "bench"
T0 = 1767225600000  # 2026-01-01T00:00Z
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
HOME_QUANTITIES = (Q.ENERGY_ACTIVE_IMPORT, Q.VOLTAGE_L1, Q.VOLTAGE_L2, Q.VOLTAGE_L3, Q.CURRENT_L1, Q.CURRENT_L2,
                   Q.CURRENT_L3, Q.POWER_ACTIVE_TOTAL, Q.POWER_REACTIVE_TOTAL)
BASE_BATCHES = 18  # the reference store: 1.8 M readings, the fold mark 3 min behind the data as in steady state
QUERY_CALLS = 20


@dataclass(frozen=True)
class Load:
    """Batch g: readings g*batch .. (g+1)*batch-1; reading k is meter k % meters at second k // meters."""

    meters: int
    batch: int
    names: tuple[str, ...] = tuple(q.value for q in HOME_QUANTITIES)

    def readings(self, g: int) -> list[Reading]:
        devs, m, names = [f"m{i:05d}" for i in range(self.meters)], self.meters, self.names
        pool = [dict(zip(names, (1e6 + j, 230.0 + j * 0.1, 229.4, 231.1, 2.5 + j * 0.2, 1.25, 0.75, 575.0 + j,
                                 41.5), strict=True)) for j in range(64)]
        return [Reading(devs[k % m], T0 + (k // m) * 1000, k // m, pool[k % 61])
                for k in range(g * self.batch, (g + 1) * self.batch)]


@dataclass
class Window:
    """Time spent writing some batches: in insert_readings (of it keeping the counters), in folds; CPU time."""

    readings: int = 0
    insert_s: float = 0.0
    count_s: float = 0.0
    fold_s: float = 0.0
    cpu_s: float = 0.0

    @property
    def wall_s(self) -> float:
        return self.insert_s + self.fold_s

    @property
    def rate(self) -> float:
        return self.readings / self.wall_s if self.wall_s else 0.0

    def add(self, other: Window) -> None:
        for name in ("readings", "insert_s", "count_s", "fold_s", "cpu_s"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Writer:
    """A store written the way an ingest worker writes it: batch inserts, a fold after every ``fold_every``."""

    store: SqliteStore
    fold_every: int
    schedule: RollupSchedule = field(default_factory=RollupSchedule)
    batches: int = 0

    def __post_init__(self) -> None:
        keep = self.store._count_stored
        self.counting = 0.0

        def timed(*args, **kwargs) -> None:
            t = time.perf_counter()
            keep(*args, **kwargs)
            self.counting += time.perf_counter() - t

        self.store._count_stored = timed  # type: ignore[method-assign]

    def write(self, readings: list[Reading]) -> Window:
        w, c0, counted = Window(readings=len(readings)), time.process_time(), self.counting
        t = time.perf_counter()
        stored = self.store.insert_readings(TENANT, readings)
        w.insert_s = time.perf_counter() - t
        assert stored == len(readings), (stored, len(readings))
        self.schedule.note(TENANT, readings)
        self.batches += 1
        if self.batches % self.fold_every == 0:
            t = time.perf_counter()
            self.schedule.run_due(self.store, force=True)
            w.fold_s = time.perf_counter() - t
        w.count_s, w.cpu_s = self.counting - counted, time.process_time() - c0
        return w


def open_store(path: Path, meters: int) -> SqliteStore:
    store = SqliteStore(str(path))
    if not store._db.execute("SELECT 1 FROM tenants WHERE name=?", (TENANT,)).fetchone():
        store.create_tenant(TENANT)
        store.put_devices([DeviceRecord(tenant=TENANT, id=f"m{i:05d}", type="electricity_meter")
                           for i in range(meters)])
    return store


def query_p95(store: SqliteStore, meters: int, seconds: int, seed: int) -> tuple[float, float, float]:
    """p95 ms of /metrics' counters, one meter's one-day 15-min aggregate, completeness of a day on whole hours."""
    rng = random.Random(seed)
    metrics = p95_ms(lambda: (store.count_readings(TENANT), store.count_rejected(TENANT)), QUERY_CALLS)
    energy = Q.ENERGY_ACTIVE_IMPORT.value
    day = p95_ms(lambda: store.query_rollups(TENANT, [f"m{rng.randrange(meters):05d}"], energy, "15m", T0,
                                             T0 + DAY_MS), QUERY_CALLS)
    hours = max(1, seconds // 3600)

    def completeness() -> None:
        lo = T0 + rng.randrange(hours) * HOUR_MS
        assert store.readings_per_device(TENANT, lo, lo + DAY_MS)

    return metrics, day, p95_ms(completeness, QUERY_CALLS)


def file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


@dataclass
class Run:
    args: argparse.Namespace
    load: Load
    big: Writer
    path: Path
    rows: list[str] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)

    def build_to(self, batches: int) -> None:
        """Write the big store's batches up to ``batches``, a progress line every --report readings."""
        every = max(1, self.args.report // self.load.batch)
        t0, done0 = time.perf_counter(), self.big.batches
        while self.big.batches < batches:
            self.big.write(self.load.readings(self.big.batches))
            if self.big.batches % every == 0:
                dt = time.perf_counter() - t0
                print(f"  {time.strftime('%H:%M:%S', time.gmtime())} {self.big.batches * self.load.batch / 1e6:,.1f}"
                      f" M stored, {(self.big.batches - done0) * self.load.batch / dt:,.0f} readings/s since the last"
                      " checkpoint (generation included)", flush=True)

    def reference_window(self, base: Path) -> tuple[Window, SqliteStore]:
        """The window's batches, on the reference's own clock (just after its data), written into a fresh copy of
        the reference store (copying not timed)."""
        ref_path = base.with_name("reference.db")
        for p in base.parent.glob("reference.db*"):
            p.unlink()
        shutil.copyfile(base, ref_path)
        ref = Writer(open_store(ref_path, self.load.meters), self.args.fold_every, batches=BASE_BATCHES)
        ref.schedule.note(TENANT, self.load.readings(BASE_BATCHES - 1))  # the data clock it had (not timed)
        w = Window()
        for g in range(BASE_BATCHES, BASE_BATCHES + self.args.fold_every):
            w.add(ref.write(self.load.readings(g)))
        return w, ref.store

    def checkpoint(self, base: Path, profile: bool) -> None:
        """Alternate big and reference windows; the rates, their ratio and the queries' p95 on both."""
        stored = self.big.batches * self.load.batch
        big, ref = Window(), Window()
        per_round = []
        profiler = _profiler() if profile else None
        ref_store: SqliteStore | None = None
        for _ in range(self.args.rounds):
            b = Window()
            with _profiling(profiler, "big"):
                for _ in range(self.args.fold_every):
                    b.add(self.big.write(self.load.readings(self.big.batches)))
            if ref_store is not None:
                ref_store.close()
            with _profiling(profiler, "reference"):
                r, ref_store = self.reference_window(base)
            big.add(b)
            ref.add(r)
            per_round.append(b.rate / r.rate)
        seconds = self.big.batches * self.load.batch // self.load.meters
        q_big = query_p95(self.big.store, self.load.meters, seconds, len(self.rows))
        assert ref_store is not None
        q_ref = query_p95(ref_store, self.load.meters, (BASE_BATCHES + self.args.fold_every) * self.load.batch
                          // self.load.meters, len(self.rows))
        ref_store.close()
        ratio = big.rate / ref.rate
        self.ratios.append(ratio)
        row = (f"| {stored / 1e6:,.1f} M | {big.rate:,.0f} | {ref.rate:,.0f} | **{ratio:.2f}** |"
               f" {min(per_round):.2f}–{max(per_round):.2f} | {_split(big)} | {_split(ref)} |"
               f" {q_big[0]:.2f} / {q_ref[0]:.2f} | {q_big[1]:.1f} / {q_ref[1]:.1f} | {q_big[2]:.0f} / {q_ref[2]:.0f} |"
               f" {file_bytes(self.path) / 1e9:.2f} GB |")
        self.rows.append(row)
        print(f"checkpoint {time.strftime('%H:%M:%S', time.gmtime())}: {row}", flush=True)
        if profiler is not None:
            profiler.report()


def _split(w: Window) -> str:
    """insert (of it counters) / fold seconds per million readings, and CPU share of wall time."""
    per = 1e6 / w.readings
    return (f"{w.insert_s * per:.1f} ({w.count_s * per:.1f}) / {w.fold_s * per:.1f} s,"
            f" cpu {100 * w.cpu_s / w.wall_s:.0f} %")


class _Profiles:
    """pyinstrument profiles of the big and the reference windows, kept apart."""

    def __init__(self) -> None:
        from pyinstrument import Profiler

        self.by_name = {name: Profiler(async_mode="disabled") for name in ("big", "reference")}

    def report(self) -> None:
        for name, prof in self.by_name.items():
            print(f"--- profile of the {name} windows ---")
            print(prof.output_text(unicode=False, color=False, show_all=False))


def _profiler() -> _Profiles:
    return _Profiles()


class _profiling:
    def __init__(self, profiles: _Profiles | None, name: str) -> None:
        self.prof = None if profiles is None else profiles.by_name[name]

    def __enter__(self) -> None:
        if self.prof is not None:
            self.prof.start()

    def __exit__(self, *exc: object) -> None:
        if self.prof is not None:
            self.prof.stop()


HEADER = ("| stored | big readings/s | reference readings/s | ratio | per round | big: s per M readings insert"
          " (counters) / fold, CPU share | reference: same | `/metrics` counters p95 ms big / ref |"
          " one meter one day 15-min p95 ms | completeness day, whole hours p95 ms | file |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--readings", type=int, default=100_000_000)
    ap.add_argument("--dir", type=Path, default=None, help="where the store is built (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the store files (default: deleted at the end)")
    ap.add_argument("--meters", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=100_000, help="readings per insert_readings (200 envelopes x 500)")
    ap.add_argument("--fold-every", type=int, default=6, help="batches between two folds (60 s of data)")
    ap.add_argument("--rounds", type=int, default=3, help="big/reference window pairs per checkpoint")
    ap.add_argument("--checkpoints", default="10e6,30e6,60e6", help="besides the base size and --readings")
    ap.add_argument("--report", type=int, default=5_000_000, help="a progress line every so many readings")
    ap.add_argument("--profile", action="store_true", help="pyinstrument over the last checkpoint's windows")
    args = ap.parse_args()
    load = Load(args.meters, args.batch)
    assert args.batch % args.meters == 0 and BASE_BATCHES % args.fold_every == 0
    work = Path(tempfile.mkdtemp(prefix="gridloop-growth-", dir=args.dir))
    path, base = work / "growth.db", work / "base.db"
    run = Run(args, load, Writer(open_store(path, args.meters), args.fold_every), path)
    window = args.fold_every
    marks = sorted({m for c in args.checkpoints.split(",") if c and (m := int(float(c))) < args.readings}
                   | {args.readings})
    targets = sorted({-(-m // args.batch // window) * window for m in marks if m // args.batch > BASE_BATCHES})
    print(f"{args.readings:,} readings of {args.meters:,} meters at 1 Hz, 9 quantities, {args.batch:,} per batch,"
          f" a fold every {args.fold_every} batches; windows of {window * args.batch:,} readings x {args.rounds}"
          f" rounds; store in {work}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
    t_start = time.perf_counter()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped: still print what was measured
    try:
        run.build_to(BASE_BATCHES)
        run.big.store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copyfile(path, base)
        print(HEADER)
        for i, target in enumerate([BASE_BATCHES, *targets]):
            run.build_to(target)
            run.checkpoint(base, args.profile and i == len(targets))
    except KeyboardInterrupt:
        print("stopped: the checkpoints above are those reached")
    stored = run.big.store.count_readings(TENANT)
    run.big.store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = file_bytes(path)
    run.big.store.close()
    print("\n" + HEADER + "\n" + "\n".join(run.rows))
    if len(run.ratios) > 1:
        print(f"growth ratio (ratio at {run.rows[-1].split('|')[1].strip()} / ratio at the base size):"
              f" {run.ratios[-1] / run.ratios[0]:.2f} (target >= 0.80)")
    print(f"{stored:,} readings in {time.perf_counter() - t_start:,.0f} s; store {size:,} bytes ="
          f" {size / max(1, stored):.0f} bytes/reading (raw, rollups, counters)")
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
