"""A gateway / concentrator with a bounded store-and-forward buffer in front of a link.

Per step the pipeline is: readings offered this step (meter index, timestamp) join the
pending readings -> everything pending and not already inside the link is offered to the
link -> the :class:`~gridloop.virtual_meters.links.base.Delivery` counts are mapped back onto
readings (per meter, oldest first) -> delivered readings leave with their arrival time.

With buffering on, whatever the link refused or lost (no acknowledgement) stays pending and
is re-sent in later steps, e.g. after a link or broker outage; beyond ``capacity_readings``
per gateway the oldest waiting readings are dropped and counted.  With buffering off,
everything the link refused or lost is gone.  The buffer sits on the sending side of the
link, so it equally stands for a concentrator's store or a meter's own load-profile memory.
Re-sending lost readings assumes acknowledgements (TCP/MQTT QoS 1, G3 MAC acks); over a one-way
link such as wireless M-Bus use ``buffering=False``.
All state is numpy arrays; no per-meter Python objects.

Example (73 Turin meters at 1 Hz over 10 PLC concentrators, 60 s steps)::

    rng = np.random.default_rng(1)
    link = PLCG3Link(PLCParams(), 73, rng, cells_round_robin(73, 10))
    gw = Gateway(link, capacity_readings=50_000, buffering=True, bytes_per_reading=60)
    step = gw.step(t, meter_idx, ts_s, dt_s=60.0)  # step.meter, step.ts_s, step.arrival_s
    completeness(np.full(73, 86_400), daily_counts(meters, ts, 73, day0_s)[:, 0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridloop.virtual_meters.links.base import Link


@dataclass(frozen=True)
class GatewayStep:
    """Result of one gateway step: readings that arrived plus what happened to the rest."""

    meter: np.ndarray  # delivered readings: meter index (sorted by meter, then ts)
    ts_s: np.ndarray  # delivered readings: measurement time, s
    arrival_s: np.ndarray  # delivered readings: time they reach the platform, s
    lost: int  # readings lost for good this step (link loss or refusal without buffering)
    dropped_overflow: int  # readings dropped this step because the buffer was full
    buffered: int  # readings pending after this step (in the buffer or inside the link)
    link_down: bool


def completeness(expected: np.ndarray, received: np.ndarray) -> np.ndarray:
    """Share of the expected readings that arrived, per entry (e.g. per meter per day), in [0, 1]."""
    expected = np.asarray(expected, dtype=float)
    received = np.minimum(np.asarray(received, dtype=float), expected)
    out = np.ones_like(expected)
    np.divide(received, expected, out=out, where=expected > 0)
    return out


def daily_counts(meter: np.ndarray, ts_s: np.ndarray, n_meters: int, day0_s: float, n_days: int = 1) -> np.ndarray:
    """Distinct readings per meter per day, ``(n_meters, n_days)``; a re-delivered reading counts once."""
    meter = np.asarray(meter, dtype=np.int64)
    offset_ms = np.round((np.asarray(ts_s, dtype=float) - day0_s) * 1000.0).astype(np.int64)
    span_ms = n_days * 86_400_000
    keep = (offset_ms >= 0) & (offset_ms < span_ms)
    key = np.unique(meter[keep] * span_ms + offset_ms[keep])
    cell = (key // span_ms) * n_days + (key % span_ms) // 86_400_000
    return np.bincount(cell, minlength=n_meters * n_days).reshape(n_meters, n_days)


def _order_by(group: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Indices sorting by (group, key) with two stable sorts."""
    order = np.argsort(key, kind="stable")
    return order[np.argsort(group[order], kind="stable")]


def _is_sorted(group: np.ndarray, key: np.ndarray) -> bool:
    """True if already ordered by (group, key)."""
    dg = np.diff(group)
    return bool(np.all((dg > 0) | ((dg == 0) & (np.diff(key) >= 0))))


def _merge_order(m: np.ndarray, ts: np.ndarray, n_old: int) -> np.ndarray:
    """Order by (meter, ts) of ``n_old`` sorted readings then new ones; cheap when new ones come later."""
    new = slice(n_old, None)
    order_new = np.arange(m.size - n_old) if _is_sorted(m[new], ts[new]) else _order_by(m[new], ts[new])
    order = np.concatenate([np.arange(n_old), n_old + order_new])
    order = order[np.argsort(m[order], kind="stable")]
    return order if _is_sorted(m[order], ts[order]) else _order_by(m, ts)


def _rank_in_group(group_sorted: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal values (input sorted by group)."""
    n = group_sorted.size
    idx = np.arange(n)
    if n == 0:
        return idx
    boundary = np.empty(n, dtype=bool)
    boundary[0] = True
    np.not_equal(group_sorted[1:], group_sorted[:-1], out=boundary[1:])
    return idx - np.maximum.accumulate(np.where(boundary, idx, 0))


class Gateway:
    """Store-and-forward gateway(s) for the link's nodes (meters) over one, possibly multi-cell, link.

    ``gateway_of_meter`` splits the meters over several gateways, each with its own buffer of
    ``capacity_readings``; by default the link's cells are the gateways.
    """

    def __init__(
        self,
        link: Link,
        capacity_readings: int,
        buffering: bool = True,
        bytes_per_reading: int = 100,
        rng: np.random.Generator | None = None,
        gateway_of_meter: np.ndarray | None = None,
    ) -> None:
        self.link = link
        self.n_meters = link.n_nodes
        self.capacity_readings = int(capacity_readings)
        self.buffering = bool(buffering)
        self.bytes_per_reading = int(bytes_per_reading)
        self.rng = rng if rng is not None else link.rng
        self.gateway_of_meter = (
            link.cell_of_node if gateway_of_meter is None else np.asarray(gateway_of_meter, dtype=np.int64)
        )
        self._n_gateways = int(self.gateway_of_meter.max()) + 1 if self.n_meters else 0
        self.broker_up = True
        # pending readings, kept sorted by (meter, ts)
        self._meter = np.zeros(0, dtype=np.int64)
        self._ts = np.zeros(0, dtype=float)
        self._in_link = np.zeros(0, dtype=bool)
        self.total_delivered = 0
        self.total_lost = 0
        self.total_dropped_overflow = 0

    def set_broker_up(self, up: bool) -> None:
        """Broker outage (False): the gateway holds everything and nothing in flight is acknowledged."""
        self.broker_up = bool(up)

    @property
    def pending_ts_s(self) -> np.ndarray:
        """Measurement times of the readings still waiting (in the buffer or inside the link)."""
        return self._ts

    @property
    def buffered(self) -> int:
        """Readings waiting in the gateway or inside the link."""
        return int(self._meter.size)

    def step(self, t_s: float, meter: np.ndarray, ts_s: np.ndarray, dt_s: float = 1.0) -> GatewayStep:
        """Take this step's sampled readings, push pending readings through the link, report the outcome."""
        n_old = self._meter.size
        m = np.concatenate([self._meter, np.asarray(meter, dtype=np.int64)])
        ts = np.concatenate([self._ts, np.asarray(ts_s, dtype=float)])
        in_link = np.concatenate([self._in_link, np.zeros(m.size - n_old, dtype=bool)])
        order = _merge_order(m, ts, n_old)
        m, ts, in_link = m[order], ts[order], in_link[order]

        cand = np.flatnonzero(~in_link)
        offer = np.bincount(m[cand], minlength=self.n_meters)
        if not self.broker_up:
            offer = np.zeros_like(offer)  # client disconnected: hold everything; the link's clock runs on
        d = self.link.transmit(t_s, offer, self.bytes_per_reading, dt_s)

        # the link takes each meter's oldest offered readings first
        take = _rank_in_group(m[cand]) < (d.offered - d.refused)[m[cand]]
        in_link[cand[take]] = True
        refused = cand[~take]

        # delivered + lost leave the head of each meter's in-link queue; losses fall at random among them
        link_idx = np.flatnonzero(in_link)
        leaving = link_idx[_rank_in_group(m[link_idx]) < (d.delivered + d.lost)[m[link_idx]]]
        if not self.broker_up:  # what was still in flight reaches no broker: not acknowledged
            lost_idx, delivered_idx = leaving, leaving[:0]
        elif d.lost.any():
            shuffle_key = m[leaving] * 2**31 + self.rng.integers(0, 2**31, leaving.size)
            shuffled = leaving[np.argsort(shuffle_key)]
            is_lost = _rank_in_group(m[shuffled]) < d.lost[m[shuffled]]
            lost_idx, delivered_idx = shuffled[is_lost], np.sort(shuffled[~is_lost])
        else:
            lost_idx, delivered_idx = leaving[:0], leaving

        out_meter, out_ts = m[delivered_idx], ts[delivered_idx]
        arrival = np.maximum(out_ts, t_s) + np.nan_to_num(d.delay_s[out_meter])

        keep = np.ones(m.size, dtype=bool)
        keep[delivered_idx] = False
        n_lost = 0
        if self.buffering:
            in_link[lost_idx] = False  # no ack: offer again next step
        else:
            keep[lost_idx] = False
            keep[refused] = False
            n_lost = int(lost_idx.size + refused.size)
        m, ts, in_link = m[keep], ts[keep], in_link[keep]
        n_drop = 0
        if self.buffering:
            m, ts, in_link, n_drop = self._drop_oldest_over_capacity(m, ts, in_link)

        self._meter, self._ts, self._in_link = m, ts, in_link
        self.total_delivered += int(delivered_idx.size)
        self.total_lost += n_lost
        self.total_dropped_overflow += n_drop
        return GatewayStep(
            meter=out_meter,
            ts_s=out_ts,
            arrival_s=arrival,
            lost=n_lost,
            dropped_overflow=n_drop,
            buffered=int(m.size),
            link_down=d.link_down,
        )

    def _drop_oldest_over_capacity(
        self, m: np.ndarray, ts: np.ndarray, in_link: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Keep at most ``capacity_readings`` waiting readings per gateway, dropping the oldest."""
        waiting = np.flatnonzero(~in_link)
        gw = self.gateway_of_meter[m[waiting]]
        excess = np.maximum(np.bincount(gw, minlength=self._n_gateways) - self.capacity_readings, 0)
        if not excess.any():
            return m, ts, in_link, 0
        by_age = waiting[_order_by(gw, ts[waiting])]
        gw_by_age = self.gateway_of_meter[m[by_age]]
        drop = by_age[_rank_in_group(gw_by_age) < excess[gw_by_age]]
        keep = np.ones(m.size, dtype=bool)
        keep[drop] = False
        return m[keep], ts[keep], in_link[keep], int(drop.size)
