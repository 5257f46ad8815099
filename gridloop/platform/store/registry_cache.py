"""Which devices a tenant has registered (and behind which gateway), cached per process: ingest asks for every
device of every envelope.

A change made through another replica is seen here after at most ``max_age_s``; writes through this process
update the cache at once. Device ids are scoped per tenant: (tenant, device) is the key everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gridloop.platform.store.records import OWNER_CACHE_S


@dataclass(frozen=True)
class Registration:
    """What ingest needs of a registered device: the gateway (or DIA) that alone may publish for it, if any."""

    gateway: str | None = None


class RegistryCache:
    """(tenant, device) -> its Registration or None, each answer kept at most ``max_age_s``."""

    def __init__(self, max_age_s: float = OWNER_CACHE_S) -> None:
        self.max_age_s = max_age_s
        self._known: dict[tuple[str, str], tuple[Registration | None, float]] = {}

    def lookup(self, tenant: str, device: str, load: Callable[[], Registration | None]) -> Registration | None:
        """The cached answer while fresh, else ``load()``'s (from the store), remembered."""
        key = (tenant, device)
        cached = self._known.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[1] < self.max_age_s:
            return cached[0]
        found = load()
        self._known[key] = (found, now)
        return found

    def remember(self, tenant: str, device: str, registration: Registration | None) -> None:
        self._known[(tenant, device)] = (registration, time.monotonic())
