"""When ingest folds a tenant's recent readings into the rollup buckets (store.materialize_rollups).

Folding per batch costs a bucket upsert per quantity and resolution for every reading (36 per 9-quantity reading:
the store fell behind at 10,000 meters at 1 Hz); folding a tenant's readings once every few seconds costs one per
bucket. The mark follows the data's own clock, not the wall clock (a scenario may run faster than real time): the
lower median over the tenant's devices of each one's newest timestamp, minus a margin for readings still on their way.
A device with a wrong clock (an RTC reset to 2036, a probe stamping wall time into a simulated day) is one vote
of many: it cannot drag the mark ahead and turn every other device's readings "late", each then folded on
arrival at a bucket upsert per quantity and resolution. A reading that arrives after its minute was folded is
folded on arrival.
"""

from __future__ import annotations

import logging
import time

import numpy as np

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
        self._newest: dict[str, dict[str, int]] = {}  # tenant -> device -> its newest timestamp
        self._last_fold: dict[str, float] = {}
        self.folded = 0

    def note(self, tenant: str, readings: list[Reading]) -> None:
        """Each device's newest timestamp (a batch holds a device's readings in time order, as sent)."""
        if readings:
            if tenant not in self._newest:  # a first fold one period after the first batch: the fleet is heard
                self._last_fold[tenant] = time.monotonic()
            self._newest.setdefault(tenant, {}).update((r[0], r[1]) for r in readings)

    def data_now(self, tenant: str) -> int | None:
        """The tenant's data clock: the lower median of its devices' newest timestamps (of two devices the older).

        It may go back (devices joining with older data): folding up to a mark already passed does nothing."""
        newest = self._newest.get(tenant)
        if not newest:
            return None
        stamps = np.fromiter(newest.values(), dtype=np.int64, count=len(newest))
        return int(np.partition(stamps, (len(stamps) - 1) // 2)[(len(stamps) - 1) // 2])

    def run_due(self, store: Store, force: bool = False) -> None:
        """Fold each tenant whose turn it is (all with ``force``); a store error is logged and tried next time."""
        now = time.monotonic()
        for tenant in self._newest:
            if not force and now - self._last_fold.get(tenant, 0.0) < self.every_s:
                continue
            data_now = self.data_now(tenant)
            if data_now is None:
                continue
            upto = data_now - self.margin_ms
            try:
                self.folded += store.materialize_rollups(tenant, upto - upto % MINUTE_MS)
            except Exception as exc:  # an outage: the readings are stored; they are folded at a later turn
                log.warning("folding the rollups of tenant %s failed (%s); trying again later", tenant, exc)
            self._last_fold[tenant] = now
