"""Which devices a tenant has registered, cached per process: ingest asks for every device of every envelope.

A change made through another replica is seen here after at most ``max_age_s``; writes through this process
update the cache at once. Device ids are scoped per tenant: (tenant, device) is the key everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gridloop.platform.store.records import OWNER_CACHE_S


class RegistryCache:
    """(tenant, device) -> registered or not, each answer kept at most ``max_age_s``."""

    def __init__(self, max_age_s: float = OWNER_CACHE_S) -> None:
        self.max_age_s = max_age_s
        self._known: dict[tuple[str, str], tuple[bool, float]] = {}

    def lookup(self, tenant: str, device: str, load: Callable[[], bool]) -> bool:
        """The cached answer while fresh, else ``load()``'s (from the store), remembered."""
        key = (tenant, device)
        cached = self._known.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[1] < self.max_age_s:
            return cached[0]
        present = load()
        self._known[key] = (present, now)
        return present

    def remember(self, tenant: str, devices: list[str], present: bool = True) -> None:
        now = time.monotonic()
        for device in devices:
            self._known[(tenant, device)] = (present, now)
