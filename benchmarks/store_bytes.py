"""Bytes per reading on disk of a run's SQLite store, rollups included, after every reading is folded.

Runs a scenario with ``gridloop run`` (or takes a run directory that has one), then folds each tenant's readings
up to past its last one with the store's own ``materialize_rollups`` (a fast run ends before its data clock has
passed its last readings) and reports page_count x page_size / readings stored. The reference, measured on the
same readings in the same run: a copy of the store whose devices' meta is emptied before that fold, so every
device keeps every resolution (what the fold did before it skipped those finer than a device's interval).
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

from gridloop.platform.store.sqlite import SqliteStore


def fold_and_measure(path: Path, every_resolution: bool) -> dict[str, float]:
    """Fold every reading of ``path`` (with ``every_resolution``: as if no device had an interval); its figures."""
    if every_resolution:
        with sqlite3.connect(path) as db:
            db.execute("UPDATE devices SET meta='{}'")
    store = SqliteStore(str(path))
    try:
        db = store._db
        for tenant, last in db.execute("SELECT tenant, max(ts) FROM readings GROUP BY tenant").fetchall():
            store.materialize_rollups(tenant, last - last % 60_000 + 60_000)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
        readings = db.execute("SELECT sum(n) FROM tenant_counts").fetchone()[0]
        rollups = db.execute("SELECT count(*) FROM rollups").fetchone()[0]
    finally:
        store.close()
    return {"bytes": pages, "readings": readings, "rollup_rows": rollups, "per_reading": pages / readings}


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
        for name, every in (("every resolution (reference)", True), ("no resolution finer than the interval", False)):
            copy = Path(tmp) / f"{every}.db"
            with sqlite3.connect(run / "store.db") as src, sqlite3.connect(copy) as dst:
                src.backup(dst)  # a consistent copy, WAL included
            figures[name] = fold_and_measure(copy, every)
            f = figures[name]
            print(f"{name}: {f['readings']:,} readings, {f['rollup_rows']:,} rollup rows, {f['bytes'] / 1e6:.1f} MB,"
                  f" {f['per_reading']:,.0f} bytes/reading")
        ref, new = figures.values()
        print(f"ratio: {new['per_reading'] / ref['per_reading']:.3f} of the reference")
        shutil.rmtree(Path(tmp) / "run", ignore_errors=True)


if __name__ == "__main__":
    main()
