"""Every meter class through its own link: a meter stage's fresh samples routed through their reading path.

Home interval meters and 1 Hz meters have their paths inside the home meter stage; the other classes (blink
detectors, transformer meters, heat, water and gas meters) get theirs here. A sample whose meters have a route is
recorded as taken and published only as the link delivers it; a class on an ideal link has no route at all, so its
samples go straight to the DIA as before, at no cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gridloop.scenario.model import CommLink
from gridloop.stage import Clock, Outputs, Stage
from gridloop.virtual_meters.electricity import MeterSample
from gridloop.virtual_meters.meter_stages import Reading, Readings, build_reading_path
from gridloop.virtual_meters.reading_path import ReadingPath, drain_paths


class MeterRoute:
    """One meter class's way to the DIA: its meters (all in every sample of the class) and their path."""

    def __init__(self, devices: Sequence[str], path: ReadingPath) -> None:
        self.devices, self.path = list(devices), path
        self.taken: list[MeterSample] = []


def meter_route(devices: Sequence[str], link: CommLink, seed: int, stream: int) -> MeterRoute | None:
    """A route for a meter class on a real link (seeded on its own stream); None on an ideal link or no meters."""
    if link.technology == "ideal" or not devices:
        return None
    return MeterRoute(devices, build_reading_path(link, len(devices), seed, stream=stream))


class LinkedMeterStage:
    """A meter stage whose samples of routed meter classes travel their link before they are published."""

    def __init__(self, inner: Stage, routes: Iterable[MeterRoute | None]) -> None:
        self.inner = inner
        self.routes = [r for r in routes if r is not None]
        self._route_of = {r.devices[0]: r for r in self.routes}
        self.period_ms, self.offset_ms = inner.period_ms, inner.offset_ms

    @property
    def paths(self) -> list[ReadingPath]:
        return [r.path for r in self.routes]

    def step(self, clock: Clock, inputs: Outputs) -> object:
        out = self.inner.step(clock, inputs)
        if not self.routes or not isinstance(out, Readings):
            return out
        items: list[Reading] = []
        for item in out.items:
            fresh = item.publish and item.record and item.sample.devices
            route = self._route_of.get(item.sample.devices[0]) if fresh else None
            if route is None:
                items.append(item)
            else:  # taken now (recorded), published when its link delivers it
                items.append(Reading(item.sample, publish=False, record=True))
                route.taken.append(item.sample)
        for route in self.routes:
            taken, route.taken = route.taken, []
            items.extend(Reading(d, publish=True, record=False)
                         for d in route.path.step(clock.now_s, clock.period_s, taken or None))
        out.items = items
        return out

    def drain(self, end_ms: int, period_ms: int) -> list[MeterSample]:
        """After the last step the gateways go on forwarding what they hold."""
        return drain_paths(self.paths, end_ms, period_ms)


def linked(stage: Stage, routes: Iterable[MeterRoute | None]) -> Stage:
    """The stage with its routed meter classes on their links; the stage itself when every class is ideal."""
    real = [r for r in routes if r is not None]
    return LinkedMeterStage(stage, real) if real else stage
