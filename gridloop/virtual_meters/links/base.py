"""What every link model shares: the per-step :class:`Delivery`, the :class:`Link` base and shared helpers.

Every link answers one call per simulation step::

    d = link.transmit(t_s, n_msgs_per_node, bytes_per_msg, dt_s=10.0)

with per-node counts in a :class:`Delivery`.  What the link did with the messages offered
this step (plus what it still held from earlier steps) always adds up::

    queued_before + offered == delivered + lost + refused + queued

- ``delivered``: reached the far end this step, after ``delay_s``;
- ``lost``: taken by the link and gone (retries exhausted, queue overflow, no ack);
- ``refused``: never taken (link down, no capacity, duty cycle used up); still the sender's,
  so a buffering gateway keeps them, a plain meter loses them;
- ``queued``: held inside the link (only the RF mesh nodes queue) for later steps.

Nodes share capacity per *cell* (``cell_of_node``: which gateway / concentrator a node
belongs to); adding gateways means more cells with fewer nodes each.  All randomness comes
from the ``numpy.random.Generator`` given to the constructor.  One module per technology
(:mod:`.rf_mesh`, :mod:`.plc_g3`, :mod:`.cellular`, :mod:`.wmbus`); their parameters and the
reasons behind them are in ``docs/links.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Delivery:
    """What one link did in one step, per node (all int arrays have shape ``(n_nodes,)``)."""

    offered: np.ndarray
    delivered: np.ndarray
    lost: np.ndarray
    refused: np.ndarray
    queued: np.ndarray
    delay_s: np.ndarray  # mean delay of this step's delivered messages; nan where none
    node_down: np.ndarray  # bool: node could not send at all (its own outage or the link's)
    link_down: bool  # injected outage of the whole link (gateway / backhaul)
    load: np.ndarray  # per cell: offered airtime demand / capacity (may exceed 1)
    utilisation: np.ndarray  # per cell: airtime used / capacity, in [0, 1]


def cells_round_robin(n_nodes: int, n_cells: int) -> np.ndarray:
    """Assign nodes to ``n_cells`` gateways as evenly as possible (node i -> cell i % n_cells)."""
    return np.arange(n_nodes, dtype=np.int64) % n_cells


class TwoStateChannel:
    """Per-node two-state Markov chain (good/bad) in continuous time, stepped by ``dt_s``."""

    def __init__(self, n_nodes: int, mean_good_s: float, mean_bad_s: float, rng: np.random.Generator) -> None:
        if mean_good_s <= 0 or mean_bad_s <= 0:
            raise ValueError("mean good and bad spell durations must be positive")
        self._rate_gb = 1.0 / mean_good_s
        self._rate_bg = 1.0 / mean_bad_s
        self._rng = rng
        p_bad = mean_bad_s / (mean_good_s + mean_bad_s)
        self.bad = rng.random(n_nodes) < p_bad  # start in the stationary distribution

    def step(self, dt_s: float) -> np.ndarray:
        """Advance the chain and return the state mask (True = bad) that holds for this step."""
        # exact transition probabilities of the continuous-time chain over dt_s (any step size)
        total = self._rate_gb + self._rate_bg
        mixing = -np.expm1(-total * dt_s)
        p_gb = self._rate_gb / total * mixing
        p_bg = self._rate_bg / total * mixing
        u = self._rng.random(self.bad.shape)
        self.bad = np.where(self.bad, u >= p_bg, u < p_gb)
        return self.bad


class Link:
    """Common state of all links: node count, cells and injected whole-link outages."""

    def __init__(self, n_nodes: int, rng: np.random.Generator, cell_of_node: np.ndarray | None = None):
        self.n_nodes = int(n_nodes)
        self.rng = rng
        self.cell_of_node = (
            np.zeros(self.n_nodes, dtype=np.int64) if cell_of_node is None else np.asarray(cell_of_node, dtype=np.int64)
        )
        if self.cell_of_node.shape != (self.n_nodes,):
            raise ValueError("cell_of_node must have one entry per node")
        self.n_cells = int(self.cell_of_node.max()) + 1 if self.n_nodes else 0
        self.down = False

    def set_down(self, down: bool) -> None:
        """Inject (True) or end (False) an outage of the whole link, e.g. a gateway or backhaul failure."""
        self.down = bool(down)

    def transmit(self, t_s: float, n_msgs_per_node: np.ndarray, bytes_per_msg: int, dt_s: float = 1.0) -> Delivery:
        """Carry the messages offered in the step ``[t_s, t_s + dt_s)``."""
        raise NotImplementedError

    def _per_cell(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.cell_of_node, weights=values, minlength=self.n_cells)

    def _counts(self, n_msgs_per_node: np.ndarray) -> np.ndarray:
        n = np.asarray(n_msgs_per_node, dtype=np.int64)
        if n.shape != (self.n_nodes,):
            raise ValueError(f"expected {self.n_nodes} per-node counts, got shape {n.shape}")
        if (n < 0).any():
            raise ValueError("message counts must be non-negative")
        return n

    def _all_refused(self, offered: np.ndarray, queued: np.ndarray) -> Delivery:
        zeros = np.zeros(self.n_nodes, dtype=np.int64)
        return Delivery(
            offered=offered,
            delivered=zeros,
            lost=zeros.copy(),
            refused=offered.copy(),
            queued=queued,
            delay_s=np.full(self.n_nodes, np.nan),
            node_down=np.ones(self.n_nodes, dtype=bool),
            link_down=True,
            load=np.zeros(self.n_cells),
            utilisation=np.zeros(self.n_cells),
        )


def delays_where_delivered(delivered: np.ndarray, delay_s: np.ndarray) -> np.ndarray:
    """``delay_s`` where something was delivered, NaN elsewhere."""
    return np.where(delivered > 0, delay_s, np.nan)


def queue_wait_s(service_s: np.ndarray, demand: np.ndarray, budget: float, dt_s: float) -> np.ndarray:
    """Mean wait for the channel: M/D/1 below capacity; above it, half a step plus the backlog's drain time."""
    rho = demand / budget
    below = rho < 0.99
    r = np.where(below, rho, 0.0)
    backlog_s = np.maximum(demand - budget, 0.0) / budget * dt_s
    return np.where(below, service_s * r / (2.0 * (1.0 - r)), 0.5 * dt_s + backlog_s)
