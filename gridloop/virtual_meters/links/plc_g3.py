"""G3-PLC over the LV grid (Turin's concentrators): shared capacity per cell, bursty loss.

Parameters and why: ``docs/links.md`` (PLC G3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridloop.virtual_meters.links.base import Delivery, Link, TwoStateChannel, delays_where_delivered, queue_wait_s


@dataclass(frozen=True)
class PLCParams:
    """A G3-PLC cell per concentrator with Gilbert-Elliott bursty loss per node."""

    capacity_bytes_per_s: float = 2000.0
    overhead_bytes: int = 40
    loss_good: float = 0.002
    loss_bad: float = 0.98
    mean_good_s: float = 2400.0
    mean_bad_s: float = 120.0
    latency_s: float = 0.3


class PLCG3Link(Link):
    """Shared-medium PLC: capacity per cell, bursty loss from a two-state (good/bad) channel."""

    def __init__(
        self, params: PLCParams, n_nodes: int, rng: np.random.Generator, cell_of_node: np.ndarray | None = None
    ) -> None:
        super().__init__(n_nodes, rng, cell_of_node)
        self.params = params
        self.channel = TwoStateChannel(n_nodes, params.mean_good_s, params.mean_bad_s, rng)

    def transmit(self, t_s: float, n_msgs_per_node: np.ndarray, bytes_per_msg: int, dt_s: float = 1.0) -> Delivery:
        """Serve within the cell capacity (rest refused); lose at the channel state's rate."""
        p = self.params
        offered = self._counts(n_msgs_per_node)
        bad = self.channel.step(dt_s)
        if self.down:
            return self._all_refused(offered, np.zeros_like(offered))
        frame = bytes_per_msg + p.overhead_bytes
        demand = self._per_cell(offered * float(frame))
        budget = p.capacity_bytes_per_s * dt_s
        share = np.ones(self.n_cells)
        np.divide(budget, demand, out=share, where=demand > budget)
        sent = np.floor(offered * share[self.cell_of_node]).astype(np.int64)
        delivered = self.rng.binomial(sent, np.where(bad, 1.0 - p.loss_bad, 1.0 - p.loss_good))
        wait = queue_wait_s(np.full(self.n_cells, frame / p.capacity_bytes_per_s), demand, budget, dt_s)
        delay = p.latency_s + frame / p.capacity_bytes_per_s + wait[self.cell_of_node]
        return Delivery(
            offered=offered,
            delivered=delivered,
            lost=sent - delivered,
            refused=offered - sent,
            queued=np.zeros_like(offered),
            delay_s=delays_where_delivered(delivered, delay),
            node_down=np.zeros(self.n_nodes, dtype=bool),
            link_down=False,
            load=demand / budget,
            utilisation=np.minimum(demand, budget) / budget,
        )
