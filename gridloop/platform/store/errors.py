"""Typed store failures that mean "the store is unavailable now, try again", as opposed to refused data.

Ingest treats them as an outage (retried, nothing acknowledged meanwhile); the REST API answers 503 with
``Retry-After`` and the reason (api/unavailable.py)."""

from __future__ import annotations

from gridloop.contract.rest import StoreOutage


class StoreUnavailable(RuntimeError):
    """The store cannot take this write now; nothing of it is acknowledged."""

    reason: StoreOutage = StoreOutage.UNAVAILABLE


class WriteLockLost(StoreUnavailable):
    """Another process took the store's write lock over during a write (this holder was thought dead): the write
    stopped before writing more, and is retried whole."""

    reason = StoreOutage.WRITE_LOCK_LOST


class WriteLockBusy(StoreUnavailable):
    """The store's write lock stayed taken by another process for longer than a writer waits."""

    reason = StoreOutage.WRITE_LOCK_BUSY
