"""Bytes per reading on disk of a run's SQLite store, rollups included, after every reading is folded.

Runs a scenario with ``gridloop run`` (or takes a run directory that has one), then folds each tenant's readings
up to past its last one with the store's own ``materialize_rollups`` (a fast run ends before its data clock has
passed its last readings) and reports page_count x page_size / readings stored. References, measured on the same
readings in the same run, each on a copy of the run's store: its values repacked as float64 (layout 2) with every
resolution (devices' meta emptied before the fold) and with none finer than a device's interval (main before
layout 3), beside layout 3 as written (values packed as exact scaled integers, buckets of >= 60 readings).
Usage: python benchmarks/store_bytes.py [--scenario scenarios/quickstart.yaml | --run DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from gridloop.platform import rollups
from gridloop.platform.store.sqlite import SqliteStore
from gridloop.platform.store.sqlite.values import Packing


def repack_float64(db: sqlite3.Connection) -> None:
    """Rewrite every reading's values as layout 2 packed them: float64, a shape of names only."""
    packings = {sid: Packing.of_key(key) for sid, key in db.execute("SELECT id, names FROM shapes")}
    f8_ids: dict[str, int] = {}
    for sid, packing in packings.items():
        names = ",".join(packing.names)
        if names not in f8_ids:
            db.execute("INSERT OR IGNORE INTO shapes (names) VALUES (?)", (names,))
            f8_ids[names] = db.execute("SELECT id FROM shapes WHERE names=?", (names,)).fetchone()[0]
        rows = db.execute("SELECT tenant, dev, ts, v FROM readings WHERE shape=?", (sid,)).fetchall()
        if not rows:
            continue
        matrix = packing.unpack(b"".join(r[3] for r in rows)).astype("<f8")
        db.executemany("UPDATE readings SET shape=?, v=? WHERE tenant=? AND dev=? AND ts=?",
                       [(f8_ids[names], matrix[i].tobytes(), *rows[i][:3]) for i in range(len(rows))])


def fold_and_measure(path: Path, every_resolution: bool = False, float64: bool = False, vacuum: bool = True
                     ) -> dict[str, float]:
    """Fold every reading of ``path`` (with ``every_resolution``: as if no device had an interval; ``float64``:
    values as layout 2 packed them; ``vacuum``: raw readings compacted first, the same for every figure)."""
    with sqlite3.connect(path, isolation_level=None) as db:
        if every_resolution:
            db.execute("UPDATE devices SET meta='{}'")
        if float64:
            repack_float64(db)
        if vacuum:
            db.execute("VACUUM")
    store = SqliteStore(str(path))
    try:
        db = store._db
        for tenant, last in db.execute("SELECT tenant, max(ts) FROM readings GROUP BY tenant").fetchall():
            store.materialize_rollups(tenant, last - last % 60_000 + 60_000)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
        readings = db.execute("SELECT sum(n) FROM tenant_counts").fetchone()[0]
        rollups = db.execute("SELECT count(*) FROM rollups").fetchone()[0]
        raw = db.execute("SELECT sum(pgsize) FROM dbstat WHERE name='readings'").fetchone()[0]
    finally:
        store.close()
    return {"bytes": pages, "readings": readings, "rollup_rows": rollups, "per_reading": pages / readings,
            "raw_per_reading": raw / readings}


# (name, every resolution, float64 values, MIN_READINGS_PER_BUCKET or None: as it is, VACUUM first)
FIGURES = (("layout 2, every resolution (reference)", True, True, None, True),
           ("layout 2, no resolution finer than the interval (main before)", False, True, 1, True),
           ("layout 3: packed values, >= 60 readings a bucket", False, False, None, True),
           ("layout 3, the run's file as written (no VACUUM)", False, False, None, False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="scenarios/quickstart.yaml")
    ap.add_argument("--run", type=Path, help="an existing run directory (its store.db) instead of running one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            run = Path(tmp) / "run"
            subprocess.run([sys.executable, "-m", "gridloop", "run", args.scenario, "--out", str(run),
                            "--no-progress"], check=True, stdout=subprocess.DEVNULL)
        figures = {}
        default_min = rollups.MIN_READINGS_PER_BUCKET
        for k, (name, every, float64, min_readings, vacuum) in enumerate(FIGURES):
            copy = Path(tmp) / f"{k}.db"
            with sqlite3.connect(run / "store.db") as src, sqlite3.connect(copy) as dst:
                src.backup(dst)  # a consistent copy, WAL included
            rollups.MIN_READINGS_PER_BUCKET = default_min if min_readings is None else min_readings
            figures[name] = f = fold_and_measure(copy, every, float64, vacuum)
            print(f"{name}: {f['readings']:,} readings, {f['rollup_rows']:,} rollup rows, {f['bytes'] / 1e6:.1f} MB,"
                  f" {f['per_reading']:,.0f} bytes/reading (raw readings {f['raw_per_reading']:,.0f})")
        rollups.MIN_READINGS_PER_BUCKET = default_min
        ref = figures[FIGURES[0][0]]["per_reading"]
        for name, f in figures.items():
            print(f"ratio to the reference: {f['per_reading'] / ref:.3f}  {name}")
        shutil.rmtree(Path(tmp) / "run", ignore_errors=True)


if __name__ == "__main__":
    main()
