"""The store's on-disk layout version: a store written by an older layout is migrated or refused, never read wrong.

Layout 1: device ids were global (one tenant per id). Layout 2: devices are keyed by (tenant, id). Layout 3 (SQLite):
a shape also says how each value column is packed (scaled integers where exact); a layout-2 store reads the same,
so its migration only records the number, and a gridloop of layout 2 refuses a layout-3 file rather than misread it.
"""

from __future__ import annotations

LAYOUT = 3
LAYOUT_KEY = "layout"


class StoreLayoutError(RuntimeError):
    """The store was written by another layout; the message says what to run."""

    def __init__(self, uri: str, found: int, expected: int = LAYOUT) -> None:
        """``expected``: the layout the backend reads (a backend may keep its own number, as MongoDB does)."""
        if found < expected:
            hint = f"migrate it first: gridloop platform migrate --store {uri}"
        else:
            hint = "it was written by a newer gridloop: upgrade gridloop to read it"
        super().__init__(f"store {uri} has layout {found}, this gridloop reads layout {expected}; {hint}")
        self.found = found
