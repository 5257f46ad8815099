"""An IPv6 6LoWPAN RF mesh (Hyllie's Connode meters): meters relay each other's frames to a gateway.

Parameters and why: ``docs/links.md`` (RF mesh). Example (Hyllie after step 5: 318 meters, 6 gateways)::

    link = RFMeshLink(RF_MESH_FIELD, draw_hops(rng, 318, FIELD_MEAN_HOPS, MAX_HOPS), rng,
                      cells_round_robin(318, 6))
    d = link.transmit(t_s, sampled.astype(np.int64), 100, dt_s=1.0)  # d.delivered, d.lost, d.load
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridloop.virtual_meters.links.base import Delivery, Link, delays_where_delivered, queue_wait_s


@dataclass(frozen=True)
class RFMeshParams:
    """An IPv6 6LoWPAN RF mesh cell per gateway (values explained in docs/links.md)."""

    capacity_bytes_per_s: float = 4500.0
    overhead_bytes: int = 25
    hop_loss: float = 0.01
    collision_loss_per_load: float = 0.2
    max_retries: int = 3
    hop_latency_s: float = 0.05
    node_queue_limit: int = 6
    load_time_constant_s: float = 60.0


RF_MESH_LAB = RFMeshParams()
RF_MESH_FIELD = RFMeshParams(hop_loss=0.05)  # concrete walls, meters in cellars
LAB_MEAN_HOPS = 2.0
FIELD_MEAN_HOPS = 3.0
MAX_HOPS = 5


def draw_hops(rng: np.random.Generator, n_nodes: int, mean_hops: float, max_hops: int) -> np.ndarray:
    """Hop counts from node to gateway, 1..max_hops with the given mean (binomial spread)."""
    if max_hops <= 1:
        return np.ones(n_nodes, dtype=np.int64)
    p = float(np.clip((mean_hops - 1.0) / (max_hops - 1), 0.0, 1.0))
    return 1 + rng.binomial(max_hops - 1, p, size=n_nodes)


class RFMeshLink(Link):
    """Meters relaying each other's frames to a gateway over a shared, contended radio channel.

    Offered frames join a per-node queue; each step the cell's airtime budget serves queues
    proportionally, each served frame crosses ``hops`` hops with per-hop retries, and what is
    left above ``node_queue_limit`` is dropped oldest-first.
    """

    def __init__(
        self,
        params: RFMeshParams,
        hops: np.ndarray,
        rng: np.random.Generator,
        cell_of_node: np.ndarray | None = None,
    ) -> None:
        super().__init__(len(hops), rng, cell_of_node)
        self.params = params
        self.hops = np.asarray(hops, dtype=np.int64)
        self.queue = np.zeros(self.n_nodes, dtype=np.int64)
        self._load_rate: np.ndarray | None = None  # smoothed first-attempt airtime demand, B/s per cell

    def transmit(self, t_s: float, n_msgs_per_node: np.ndarray, bytes_per_msg: int, dt_s: float = 1.0) -> Delivery:
        """Queue, serve within the cell's airtime and deliver over the hops (see the class doc)."""
        p = self.params
        offered = self._counts(n_msgs_per_node)
        if self.down:
            return self._all_refused(offered, self.queue.copy())
        frame_hop_bytes = (bytes_per_msg + p.overhead_bytes) * self.hops
        rate = self._per_cell(offered * frame_hop_bytes) / dt_s
        if self._load_rate is None:
            self._load_rate = rate
        else:
            alpha = -np.expm1(-dt_s / p.load_time_constant_s)
            self._load_rate = self._load_rate + alpha * (rate - self._load_rate)
        rho = np.minimum(self._load_rate / p.capacity_bytes_per_s, 1.0)
        p_hop_cell = np.clip(p.hop_loss + p.collision_loss_per_load * rho, 0.0, 0.95)
        attempts = p.max_retries + 1
        tx_per_hop_cell = (1.0 - p_hop_cell**attempts) / (1.0 - p_hop_cell)  # expected sends per hop
        p_hop = p_hop_cell[self.cell_of_node]
        tx_per_hop = tx_per_hop_cell[self.cell_of_node]
        cost = frame_hop_bytes * tx_per_hop  # airtime bytes per message, end to end
        self.queue = self.queue + offered
        demand = self._per_cell(self.queue * cost)
        mean_cost = demand / np.maximum(self._per_cell(self.queue.astype(float)), 1.0)  # airtime B per message
        budget = p.capacity_bytes_per_s * dt_s
        share = np.ones(self.n_cells)
        np.divide(budget, demand, out=share, where=demand > budget)
        served = self.rng.binomial(self.queue, share[self.cell_of_node])
        success = (1.0 - p_hop**attempts) ** self.hops
        delivered = self.rng.binomial(served, success)
        self.queue = self.queue - served
        overflow = np.maximum(self.queue - p.node_queue_limit, 0)
        self.queue = self.queue - overflow
        lost = served - delivered + overflow
        wait = queue_wait_s(mean_cost / p.capacity_bytes_per_s, demand, budget, dt_s)
        delay = self.hops * p.hop_latency_s * tx_per_hop + wait[self.cell_of_node]
        return Delivery(
            offered=offered,
            delivered=delivered,
            lost=lost,
            refused=np.zeros_like(offered),
            queued=self.queue.copy(),
            delay_s=delays_where_delivered(delivered, delay),
            node_down=np.zeros(self.n_nodes, dtype=bool),
            link_down=False,
            load=self._load_rate * tx_per_hop_cell / p.capacity_bytes_per_s,
            utilisation=np.minimum(self._per_cell(served * cost) / budget, 1.0),
        )
