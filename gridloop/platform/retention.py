"""Data retention per tenant and resolution: a background task of the platform, or one CLI call.

Deletes go in bounded batches (one short transaction each), so ingest and queries keep running.
Usage: python -m gridloop.platform.retention --store URI --tenant T [--raw-days D] [--rollup-days 1m=30 ...]
"""

from __future__ import annotations

import argparse
import logging
import threading
from dataclasses import dataclass, field

from gridloop.platform.rollups import RESOLUTIONS
from gridloop.platform.store import open_store
from gridloop.platform.store.base import RollupStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionPolicy:
    """How long one tenant keeps raw readings and each rollup resolution (None / absent: forever)."""

    tenant: str
    raw_days: float | None = None
    rollup_days: dict[str, float] = field(default_factory=dict)
    batch: int = 5000

    def __post_init__(self) -> None:
        if unknown := set(self.rollup_days) - set(RESOLUTIONS):
            raise ValueError(f"unknown rollup resolution(s) {sorted(unknown)}; known: {list(RESOLUTIONS)}")

    def apply(self, store: RollupStore, now: int | None = None) -> dict[str, int]:
        return store.apply_retention(self.tenant, raw_days=self.raw_days, rollup_days=dict(self.rollup_days),
                                     batch=self.batch, now=now)


class RetentionTask:
    """Applies the policies every ``period_s`` seconds in a background thread."""

    def __init__(self, store: RollupStore, policies: list[RetentionPolicy], period_s: float = 3600.0) -> None:
        self.store = store
        self.policies = policies
        self.period_s = period_s
        self.deleted: dict[str, int] = {}
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for policy in self.policies:
                try:
                    for kind, n in policy.apply(self.store).items():
                        self.deleted[kind] = self.deleted.get(kind, 0) + n
                except Exception:
                    log.exception("retention for tenant %s failed; retried next period", policy.tenant)
            self.runs += 1
            self._stop.wait(self.period_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)


def parse_rollup_days(items: list[str]) -> dict[str, float]:
    """['1m=30', '1h=365'] -> {'1m': 30.0, '1h': 365.0}."""
    out = {}
    for item in items:
        res, sep, days = item.partition("=")
        if not sep:
            raise ValueError(f"expected RES=DAYS, got {item!r}")
        out[res] = float(days)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True, help="sqlite:///path or mongodb://host:port/db")
    ap.add_argument("--tenant", required=True)
    ap.add_argument("--raw-days", type=float)
    ap.add_argument("--rollup-days", nargs="*", default=[], metavar="RES=DAYS", help="e.g. 1m=30 15m=365")
    ap.add_argument("--batch", type=int, default=5000, help="rows (documents) per delete")
    args = ap.parse_args(argv)
    try:
        policy = RetentionPolicy(args.tenant, args.raw_days, parse_rollup_days(args.rollup_days), args.batch)
    except ValueError as exc:
        ap.error(str(exc))
    store = open_store(args.store)
    try:
        if not store.tenant_exists(args.tenant):
            ap.error(f"no tenant {args.tenant!r} in {args.store}")
        for kind, n in policy.apply(store).items():
            print(f"{kind}: {n} deleted")
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
