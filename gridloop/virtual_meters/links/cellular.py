"""Point-to-point cellular links: GPRS modems (Hyllie substations) and 3G/4G home gateways (Turin).

Parameters and why: ``docs/links.md`` (cellular).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridloop.virtual_meters.links.base import Delivery, Link, TwoStateChannel, delays_where_delivered, queue_wait_s


@dataclass(frozen=True)
class CellularParams:
    """A point-to-point cellular connection per node (GPRS modem, 3G/4G home gateway)."""

    capacity_bytes_per_s: float
    overhead_bytes: int
    latency_s: float
    latency_sigma: float  # lognormal shape of the latency jitter
    mean_time_between_outages_s: float
    mean_outage_s: float
    loss: float = 0.0  # TCP/MQTT: losses show as delay, not as missing data
    dropouts_per_hour: float = 0.0  # short connection drops (reconnect, cell reselection) per node
    mean_dropout_s: float = 0.0  # how long one drop lasts; what is offered meanwhile is refused


GPRS = CellularParams(
    capacity_bytes_per_s=2500.0,
    overhead_bytes=60,
    latency_s=0.8,
    latency_sigma=0.5,
    mean_time_between_outages_s=86_400.0,
    mean_outage_s=300.0,
)
HOME_GATEWAY_4G = CellularParams(
    capacity_bytes_per_s=1.0e6,
    overhead_bytes=60,
    latency_s=0.15,
    latency_sigma=0.4,
    mean_time_between_outages_s=172_800.0,
    mean_outage_s=600.0,
    dropouts_per_hour=12.0,
    mean_dropout_s=15.0,
)


class CellularLink(Link):
    """Independent per-node cellular links with latency jitter and rare per-node outages."""

    def __init__(self, params: CellularParams, n_nodes: int, rng: np.random.Generator) -> None:
        super().__init__(n_nodes, rng, np.arange(n_nodes, dtype=np.int64))
        self.params = params
        self.channel = TwoStateChannel(n_nodes, params.mean_time_between_outages_s, params.mean_outage_s, rng)

    def transmit(self, t_s: float, n_msgs_per_node: np.ndarray, bytes_per_msg: int, dt_s: float = 1.0) -> Delivery:
        """Refuse everything of nodes in outage; cap the rest by the per-node capacity."""
        p = self.params
        offered = self._counts(n_msgs_per_node)
        outage = self.channel.step(dt_s)
        if self.down:
            return self._all_refused(offered, np.zeros_like(offered))
        frame = bytes_per_msg + p.overhead_bytes
        cap_msgs = int(p.capacity_bytes_per_s * dt_s // frame)
        sent = np.where(outage, 0, np.minimum(offered, cap_msgs))
        sent = sent - self._refused_in_dropouts(sent, dt_s)
        delivered = self.rng.binomial(sent, 1.0 - p.loss) if p.loss > 0 else sent
        mu = np.log(p.latency_s) - 0.5 * p.latency_sigma**2  # lognormal with mean latency_s
        jitter = self.rng.lognormal(mu, p.latency_sigma, self.n_nodes)
        service_s = frame / p.capacity_bytes_per_s
        delay = (
            jitter
            + service_s
            + queue_wait_s(np.full(self.n_nodes, service_s), sent * frame, p.capacity_bytes_per_s * dt_s, dt_s)
        )
        return Delivery(
            offered=offered,
            delivered=delivered,
            lost=sent - delivered,
            refused=offered - sent,
            queued=np.zeros_like(offered),
            delay_s=delays_where_delivered(delivered, delay),
            node_down=outage.copy(),
            link_down=False,
            load=offered * frame / (p.capacity_bytes_per_s * dt_s),
            utilisation=sent * frame / (p.capacity_bytes_per_s * dt_s),
        )

    def _refused_in_dropouts(self, sent: np.ndarray, dt_s: float) -> np.ndarray:
        """Messages (spread evenly over the step) that fall into short connection drops within it."""
        p = self.params
        if p.dropouts_per_hour <= 0 or p.mean_dropout_s <= 0:
            return np.zeros_like(sent)
        drops = self.rng.poisson(p.dropouts_per_hour / 3600.0 * dt_s, self.n_nodes)
        down_s = self.rng.gamma(np.maximum(drops, 1), p.mean_dropout_s) * (drops > 0)  # sum of exponential drops
        return self.rng.binomial(sent, np.minimum(down_s / dt_s, 1.0))
