"""When ingest folds a tenant's recent readings into the rollup buckets (store.materialize_rollups).

Folding per batch costs a bucket upsert per quantity and resolution for every reading (36 per 9-quantity reading:
the store fell behind at 10,000 meters at 1 Hz); folding a tenant's readings once every few seconds costs one per
bucket. The mark follows the data's own clock, not the wall clock (a scenario may run faster than real time): the
median timestamp of the tenant's latest readings, minus a margin for readings still on their way. A few devices
with wrong clocks move a median little; a reading that arrives after its minute was folded is folded on arrival.
"""

from __future__ import annotations

import logging
import time

from gridloop.platform.envelope import Reading
from gridloop.platform.store.base import Store

log = logging.getLogger(__name__)
FOLD_EVERY_S = 5.0  # wall time between two folds of one tenant
MARGIN_MS = 120_000  # data time left unfolded for readings still on their way
MINUTE_MS = 60_000


class RollupSchedule:
    """Notes the data time of each tenant's stored readings and folds them into the rollups every FOLD_EVERY_S."""

    def __init__(self, every_s: float = FOLD_EVERY_S, margin_ms: int = MARGIN_MS) -> None:
        self.every_s, self.margin_ms = every_s, margin_ms
        self._data_now: dict[str, int] = {}
        self._last_fold: dict[str, float] = {}
        self.folded = 0

    def note(self, tenant: str, readings: list[Reading]) -> None:
        """The tenant's data clock: the median timestamp of readings just stored."""
        if readings:
            stamps = sorted(r[1] for r in readings)
            self._data_now[tenant] = max(self._data_now.get(tenant, 0), stamps[len(stamps) // 2])

    def run_due(self, store: Store, force: bool = False) -> None:
        """Fold each tenant whose turn it is (all with ``force``); a store error is logged and tried next time."""
        now = time.monotonic()
        for tenant, data_now in self._data_now.items():
            if not force and now - self._last_fold.get(tenant, 0.0) < self.every_s:
                continue
            upto = data_now - self.margin_ms
            try:
                self.folded += store.materialize_rollups(tenant, upto - upto % MINUTE_MS)
            except Exception as exc:  # an outage: the readings are stored; they are folded at a later turn
                log.warning("folding the rollups of tenant %s failed (%s); trying again later", tenant, exc)
            self._last_fold[tenant] = now
