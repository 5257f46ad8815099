"""The way from a meter to its DIA: through a communication link and a gateway, or straight (ideal).

Each step, the readings sampled now join what the gateway still holds; what the link delivers
this step is handed to the DIA, what it loses is counted. Values wait here, keyed by their
measurement instant, until their reading is delivered.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from gridloop.virtual_meters.electricity import MeterSample
from gridloop.virtual_meters.gateway import Gateway
from gridloop.virtual_meters.links.base import Link, cells_round_robin
from gridloop.virtual_meters.links.cellular import GPRS, HOME_GATEWAY_4G, CellularLink
from gridloop.virtual_meters.links.plc_g3 import PLCG3Link, PLCParams
from gridloop.virtual_meters.links.rf_mesh import (
    FIELD_MEAN_HOPS,
    LAB_MEAN_HOPS,
    MAX_HOPS,
    RF_MESH_FIELD,
    RF_MESH_LAB,
    RFMeshLink,
    draw_hops,
)
from gridloop.virtual_meters.links.wmbus import WMBusLink, WMBusParams

Technology = Literal["ideal", "rf_mesh", "plc_g3", "gprs", "home_4g", "wmbus"]


def build_link(technology: Technology, n_meters: int, gateways: int, profile: str,
               rng: np.random.Generator) -> Link | None:
    """A seeded link model for ``n_meters`` meters spread round-robin over ``gateways`` cells."""
    cells = cells_round_robin(n_meters, max(1, gateways))
    if technology == "ideal":
        return None
    if technology == "rf_mesh":
        params, hops = (RF_MESH_LAB, LAB_MEAN_HOPS) if profile == "lab" else (RF_MESH_FIELD, FIELD_MEAN_HOPS)
        return RFMeshLink(params, draw_hops(rng, n_meters, hops, MAX_HOPS), rng, cells)
    if technology == "plc_g3":
        return PLCG3Link(PLCParams(), n_meters, rng, cells)
    if technology == "gprs":
        return CellularLink(GPRS, n_meters, rng)
    if technology == "home_4g":
        return CellularLink(HOME_GATEWAY_4G, n_meters, rng)
    if technology == "wmbus":
        return WMBusLink(WMBusParams(), n_meters, rng, cells)
    raise ValueError(f"unknown link technology {technology!r}")


class DegradableLink:
    """A link whose delivered messages can be lost at an extra rate for a while (interference, a failing
    antenna); everything else is the wrapped link's."""

    def __init__(self, link: Link, rng: np.random.Generator) -> None:
        self.link = link
        self.extra_loss = 0.0
        self._rng = rng

    def __getattr__(self, name: str):
        return getattr(self.link, name)

    def transmit(self, *args, **kwargs):
        d = self.link.transmit(*args, **kwargs)
        if self.extra_loss <= 0:
            return d
        extra = self._rng.binomial(d.delivered, self.extra_loss)
        return replace(d, delivered=d.delivered - extra, lost=d.lost + extra)


@dataclass
class PathCounters:
    lost_in_link: int = 0
    dropped_overflow: int = 0


class ReadingPath:
    """Meter samples in, delivered readings out (grouped by measurement instant)."""

    def __init__(self, gateway: Gateway | None, bytes_per_reading: int = 100) -> None:
        self.gateway = gateway
        self.bytes_per_reading = bytes_per_reading
        self.counters = PathCounters()
        self._held: dict[int, MeterSample] = {}  # ts_ms -> sample whose readings are not all delivered yet

    @property
    def buffered(self) -> int:
        return 0 if self.gateway is None else self.gateway.buffered

    def step(self, t_s: float, dt_s: float, sample: MeterSample | list[MeterSample] | None) -> list[MeterSample]:
        """Advance the path by one step of dt_s seconds; returns what reached the DIA in it.

        ``sample``: the readings taken this step, one sample per measurement instant (a 1 Hz meter's step is
        a window of one-second samples of the same meters).
        """
        samples = [] if sample is None else [sample] if isinstance(sample, MeterSample) else list(sample)
        if self.gateway is None:
            return samples
        for s in samples:
            self._held[s.ts_ms] = s
        meter, ts_s = self._offered(samples)
        out = self.gateway.step(t_s, meter, ts_s, dt_s)
        self.counters.lost_in_link += out.lost
        self.counters.dropped_overflow += out.dropped_overflow
        ts_ms = np.round(out.ts_s * 1000.0).astype(np.int64)
        order = np.argsort(ts_ms, kind="stable")  # by instant, each instant's meters in order
        instants, starts = np.unique(ts_ms[order], return_index=True)
        groups = np.split(out.meter[order], starts[1:]) if instants.size else []
        delivered = [self._held[int(ts)].subset(idx) for ts, idx in zip(instants.tolist(), groups, strict=True)]
        self._forget_settled()
        return delivered

    @staticmethod
    def _offered(samples: list[MeterSample]) -> tuple[np.ndarray, np.ndarray]:
        """(meter index, measurement time in s) of every reading, ordered by meter then time."""
        if not samples:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        n = len(samples[0].devices)
        if any(len(s.devices) != n for s in samples):
            raise ValueError("the samples of one step must cover the same meters")
        instants = np.array([s.ts_ms for s in samples], dtype=float) / 1000.0
        return np.repeat(np.arange(n), len(samples)), np.tile(instants, n)

    def _forget_settled(self) -> None:
        """Drop held samples once none of their readings can still be delivered."""
        if not self._held or self.gateway is None:
            return
        pending = set(np.round(self.gateway.pending_ts_s * 1000.0).astype(np.int64).tolist())
        for ts in [t for t in self._held if t not in pending]:
            del self._held[ts]


def drain_paths(paths: list[ReadingPath], end_ms: int, period_ms: int, limit_ms: int = 3_600_000) -> list[MeterSample]:
    """After the last step the gateways go on forwarding what they hold, for up to limit_ms."""
    out: list[MeterSample] = []
    for path in paths:
        t = end_ms
        while path.buffered and t < end_ms + limit_ms:
            out += path.step(t / 1000, period_ms / 1000, None)
            t += period_ms
    return out
