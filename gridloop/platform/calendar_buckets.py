"""Days and months in a time zone, built from the stored (UTC-aligned) rollups.

A local day is 23 or 25 hours long on the days daylight saving time starts or ends, and a month is 28 to 31 such
days, so these buckets are not a fixed width: their bounds are local midnights turned into epoch ms. Each bucket is
the merge of the stored buckets that start inside it, of the coarsest stored resolution every bound falls on:
``1d`` for UTC, ``1h`` for Europe/Rome or Europe/Stockholm (whole-hour offsets), ``15m`` for a zone such as
Asia/Kolkata (+05:30). Nothing finer than that is read, and nothing finer is stored for it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from gridloop.platform.rollups import RESOLUTIONS, RollupBucket, merge_by_start

CALENDAR_INTERVALS = ("1d", "1mo")


class UnknownTimeZone(ValueError):
    pass


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; UnknownTimeZone if there is none of that name (never a file path)."""
    if name not in _zone_names():
        raise UnknownTimeZone(f"unknown time zone {name[:64]!r}: an IANA name such as Europe/Rome")
    return ZoneInfo(name)


def _local_start(ts_ms: int, tz: ZoneInfo, interval: str) -> datetime:
    """The local midnight starting the day (or month) that holds ``ts_ms``."""
    local = datetime.fromtimestamp(ts_ms / 1000, tz)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    return day.replace(day=1) if interval == "1mo" else day


def _next(start: datetime, interval: str) -> datetime:
    if interval == "1mo":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start + timedelta(days=1)


def _epoch_ms(naive_local: datetime, tz: ZoneInfo) -> int:
    """A local wall time as epoch ms. fold=0: a midnight that happens twice counts from its first time; one skipped
    by a DST change (America/Santiago) from the first instant after the gap."""
    return round(naive_local.replace(tzinfo=tz).timestamp() * 1000)


def bounds(lo: int, hi: int, tz: ZoneInfo, interval: str, limit: int) -> list[int]:
    """Epoch-ms bounds of the local days (months) from the one holding ``lo`` to the last starting before ``hi``:
    bucket i is [bounds[i], bounds[i+1]). At most ``limit`` buckets, else ValueError."""
    start = _local_start(lo, tz, interval)
    out = [_epoch_ms(start, tz)]
    while out[-1] < hi:
        if len(out) > limit:
            raise ValueError(f"more than {limit} buckets of {interval} between start and end")
        start = _next(start, interval)
        out.append(_epoch_ms(start, tz))
    return out


def source_resolution(edges: Iterable[int]) -> str:
    """The coarsest stored resolution every bound falls on."""
    edges = list(edges)
    for resolution in sorted(RESOLUTIONS, key=RESOLUTIONS.__getitem__, reverse=True):
        if all(e % RESOLUTIONS[resolution] == 0 for e in edges):
            return resolution
    raise ValueError("bounds not on whole minutes")  # no IANA zone has had a seconds offset since 1972


def fold(stored: Iterable[RollupBucket], edges: list[int]) -> list[RollupBucket]:
    """The stored buckets (of any devices) merged into the buckets between ``edges``; empty ones left out."""

    def start_of(ts: int) -> int | None:
        i = bisect_right(edges, ts) - 1
        return edges[i] if 0 <= i < len(edges) - 1 else None

    return merge_by_start(stored, start_of)
