"""The run summary's `links` section: what each meter class's way to the DIA lost, dropped and still held."""

from __future__ import annotations

from dataclasses import dataclass

from gridloop.contract.summary import LinkedMeters, LinkSection
from gridloop.scenario.model import CommLink
from gridloop.virtual_meters.reading_path import ReadingPath


@dataclass(frozen=True)
class LinkClass:
    """A meter class of a substation and its way to the DIA (``path`` None: an ideal link, nothing to count)."""

    meters: LinkedMeters
    section: LinkSection
    link: CommLink
    path: ReadingPath | None
    count: int


def link_summary(link: CommLink, classes: list[LinkClass], paths: list[ReadingPath], home_paths: list[ReadingPath],
                 dia_dropped: int) -> dict:
    """meters.link's settings (``link``), counts over every path, and each meter class's path (those with meters).
    ``classes`` and ``paths``: of every substation; ``home_paths``: each substation's home meters' path."""
    per_class = []
    for kind in LinkedMeters:
        of_kind = [c for c in classes if c.meters == kind]
        count = sum(c.count for c in of_kind)
        if not count:
            continue
        real = [c.path for c in of_kind if c.path is not None]
        first = of_kind[0].link
        per_class.append({
            "meters": kind, "section": of_kind[0].section, "meter_count": count, "technology": first.technology,
            "profile": first.profile, "gateways": first.gateways * sum(p.gateway is not None for p in real),
            "buffering": first.buffering,
            "lost_in_link": sum(p.counters.lost_in_link for p in real),
            "dropped_gateway_overflow": sum(p.counters.dropped_overflow for p in real),
            "buffered_at_end": sum(p.buffered for p in real)})
    return {
        "technology": link.technology,
        "gateways": link.gateways * sum(p.gateway is not None for p in home_paths),
        "buffering": link.buffering,
        "lost_in_link": sum(p.counters.lost_in_link for p in paths),
        "dropped_gateway_overflow": sum(p.counters.dropped_overflow for p in paths),
        "buffered_at_end": sum(p.buffered for p in paths),
        "dia_dropped": dia_dropped,
        "paths": per_class,
    }
