"""Communication links between meters and the platform, vectorised over nodes (meters).

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
from the ``numpy.random.Generator`` given to the constructor.

Example (Hyllie after step 5: 318 meters, 6 gateways, 10 s data)::

    rng = np.random.default_rng(1)
    link = RFMeshLink(RF_MESH_FIELD, draw_hops(rng, 318, FIELD_MEAN_HOPS, MAX_HOPS), rng,
                      cells_round_robin(318, 6))
    d = link.transmit(t_s, sampled.astype(np.int64), 100, dt_s=1.0)  # d.delivered, d.lost, d.load

Parameters and why (FLEXMETER D6.3, sections 3.3 and 4.1-4.2).  They are calibrated to
reproduce the pilots' findings with plausible physical values, not measured:

- **RF mesh (Hyllie, Connode 6LoWPAN, 318 meters).**  One reading of 8 values (2 energy
  registers, 3 voltages, 3 powers) is ~100 B of payload; 802.15.4 MAC + compressed
  IPv6/UDP + the hop-by-hop ack add ``overhead_bytes=25``, so one frame per reading and hop.
  ``capacity_bytes_per_s=4500`` is the gateway's effective shared-channel goodput (~36 kbit/s
  of a sub-GHz FSK channel after CSMA back-off, acks and half-duplex relaying; one cell is one
  collision domain, so every hop of every message costs airtime).  Per-hop loss is
  ``hop_loss`` (1 % in the lab, 5 % through the thick concrete walls and cellars in the field)
  plus ``collision_loss_per_load=0.2`` x channel load (CSMA collisions grow with load); the
  MAC retries ``max_retries=3`` times per hop, which also multiplies airtime.  Nodes hold
  ``node_queue_limit=6`` messages (small embedded buffer) and drop the oldest beyond.
  Sizing: 318 meters on 3 gateways as first planned, ~106 meters per cell at mean 2 hops in
  the lab; at 10 s the load is ~0.7 of capacity (retries included) and >99.9 % arrives; at
  5 s it is ~1.6x capacity, node queues fill and ~30 % is dropped.  Field: mean 3 hops and
  5 % per-hop loss overload the same cells at 10 s (load ~1.2, ~90 % arrives); with twice the
  gateways (6, ~53 meters per cell) 10 s is reliable again at load ~0.5 ("still on the edge
  of capacity"), and at 30 s the load is ~0.17 (stable with margin).
- **PLC G3 (Turin, 73 single-phase 1 Hz meters, 10 gateways -> ~8 per cell).**  G3-PLC
  CENELEC-A gives a few tens of kbit/s PHY; ``capacity_bytes_per_s=2000`` per cell
  (16 kbit/s goodput) carries 8 meters x 100 B/s at 40 % so a backlog is caught up at
  ~1.5x real time.  Impulsive noise and impedance changes on the LV grid make the losses
  bursty: a Gilbert-Elliott channel per node, good state loss 0.2 %, bad state loss 98 %,
  mean good spell 40 min, mean bad spell 2 min -> ~5 % of samples lost, i.e. ~82,000 of
  86,400 per day, below the 84,000 the disaggregation needs ("communication interruptions
  during the day between meters and gateways").
- **GPRS point-to-point (Hyllie substation and heat meters via Raspberry Pi + modem).**
  ~20 kbit/s uplink (2500 B/s per node), ~0.8 s latency with jitter, an outage about once a
  day lasting ~5 min (cellar coverage); TCP so no silent loss.
- **Home gateway over 3G/4G (Turin home meters at 1 Hz).**  1 MB/s, ~0.15 s latency, an
  outage every ~2 days lasting ~10 min.
- **Wireless M-Bus 868 MHz (Turin water meters).**  Mode S1 (32.768 kchip/s Manchester ->
  16.384 kbit/s, long preamble ~600 bit): a 40 B frame is ~62 ms on air.  The 868.0-868.6 MHz
  sub-band allows 1 % duty cycle, i.e. 36 s of airtime per hour -> ~580 frames per hour per
  meter at most (``max_msgs_per_hour``).  One-way, unslotted: collisions follow pure ALOHA
  (success ``exp(-2G)`` with G the cell's airtime load) and nothing is acknowledged.
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


def draw_hops(rng: np.random.Generator, n_nodes: int, mean_hops: float, max_hops: int) -> np.ndarray:
    """Hop counts from node to gateway, 1..max_hops with the given mean (binomial spread)."""
    if max_hops <= 1:
        return np.ones(n_nodes, dtype=np.int64)
    p = float(np.clip((mean_hops - 1.0) / (max_hops - 1), 0.0, 1.0))
    return 1 + rng.binomial(max_hops - 1, p, size=n_nodes)


def cells_round_robin(n_nodes: int, n_cells: int) -> np.ndarray:
    """Assign nodes to ``n_cells`` gateways as evenly as possible (node i -> cell i % n_cells)."""
    return np.arange(n_nodes, dtype=np.int64) % n_cells


class _TwoStateChannel:
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


def _delays(delivered: np.ndarray, delay_s: np.ndarray) -> np.ndarray:
    return np.where(delivered > 0, delay_s, np.nan)


def _queue_wait_s(service_s: np.ndarray, demand: np.ndarray, budget: float, dt_s: float) -> np.ndarray:
    """Mean wait for the channel: M/D/1 below capacity; above it, half a step plus the backlog's drain time."""
    rho = demand / budget
    below = rho < 0.99
    r = np.where(below, rho, 0.0)
    backlog_s = np.maximum(demand - budget, 0.0) / budget * dt_s
    return np.where(below, service_s * r / (2.0 * (1.0 - r)), 0.5 * dt_s + backlog_s)


# --------------------------------------------------------------------------- RF mesh


@dataclass(frozen=True)
class RFMeshParams:
    """An IPv6 6LoWPAN RF mesh cell per gateway (see the module docstring for the values)."""

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
        wait = _queue_wait_s(mean_cost / p.capacity_bytes_per_s, demand, budget, dt_s)
        delay = self.hops * p.hop_latency_s * tx_per_hop + wait[self.cell_of_node]
        return Delivery(
            offered=offered,
            delivered=delivered,
            lost=lost,
            refused=np.zeros_like(offered),
            queued=self.queue.copy(),
            delay_s=_delays(delivered, delay),
            node_down=np.zeros(self.n_nodes, dtype=bool),
            link_down=False,
            load=self._load_rate * tx_per_hop_cell / p.capacity_bytes_per_s,
            utilisation=np.minimum(self._per_cell(served * cost) / budget, 1.0),
        )


# --------------------------------------------------------------------------- PLC G3


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
        self.channel = _TwoStateChannel(n_nodes, params.mean_good_s, params.mean_bad_s, rng)

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
        wait = _queue_wait_s(np.full(self.n_cells, frame / p.capacity_bytes_per_s), demand, budget, dt_s)
        delay = p.latency_s + frame / p.capacity_bytes_per_s + wait[self.cell_of_node]
        return Delivery(
            offered=offered,
            delivered=delivered,
            lost=sent - delivered,
            refused=offered - sent,
            queued=np.zeros_like(offered),
            delay_s=_delays(delivered, delay),
            node_down=np.zeros(self.n_nodes, dtype=bool),
            link_down=False,
            load=demand / budget,
            utilisation=np.minimum(demand, budget) / budget,
        )


# --------------------------------------------------------------------------- cellular P2P


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
)


class CellularLink(Link):
    """Independent per-node cellular links with latency jitter and rare per-node outages."""

    def __init__(self, params: CellularParams, n_nodes: int, rng: np.random.Generator) -> None:
        super().__init__(n_nodes, rng, np.arange(n_nodes, dtype=np.int64))
        self.params = params
        self.channel = _TwoStateChannel(n_nodes, params.mean_time_between_outages_s, params.mean_outage_s, rng)

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
        delivered = self.rng.binomial(sent, 1.0 - p.loss) if p.loss > 0 else sent
        mu = np.log(p.latency_s) - 0.5 * p.latency_sigma**2  # lognormal with mean latency_s
        jitter = self.rng.lognormal(mu, p.latency_sigma, self.n_nodes)
        service_s = frame / p.capacity_bytes_per_s
        delay = (
            jitter
            + service_s
            + _queue_wait_s(np.full(self.n_nodes, service_s), sent * frame, p.capacity_bytes_per_s * dt_s, dt_s)
        )
        return Delivery(
            offered=offered,
            delivered=delivered,
            lost=sent - delivered,
            refused=offered - sent,
            queued=np.zeros_like(offered),
            delay_s=_delays(delivered, delay),
            node_down=outage.copy(),
            link_down=False,
            load=offered * frame / (p.capacity_bytes_per_s * dt_s),
            utilisation=sent * frame / (p.capacity_bytes_per_s * dt_s),
        )


# --------------------------------------------------------------------------- wireless M-Bus


@dataclass(frozen=True)
class WMBusParams:
    """Wireless M-Bus 868 MHz, mode S1, one-way; duty cycle limited per meter."""

    bitrate_bps: float = 16_384.0
    preamble_bits: int = 600
    overhead_bytes: int = 12  # L/C/M/A fields and CRCs
    duty_cycle: float = 0.01
    base_loss: float = 0.02
    latency_s: float = 0.1


class WMBusLink(Link):
    """Battery meters that may only transmit 1 % of the time; unacknowledged ALOHA to a receiver."""

    def __init__(
        self, params: WMBusParams, n_nodes: int, rng: np.random.Generator, cell_of_node: np.ndarray | None = None
    ) -> None:
        super().__init__(n_nodes, rng, cell_of_node)
        self.params = params
        self._bucket_s = np.full(n_nodes, params.duty_cycle * 3600.0)  # airtime allowance left

    def airtime_s(self, bytes_per_msg: int) -> float:
        """Time on air of one frame."""
        p = self.params
        return (p.preamble_bits + 8 * (bytes_per_msg + p.overhead_bytes)) / p.bitrate_bps

    def max_msgs_per_hour(self, bytes_per_msg: int) -> int:
        """Frames one meter may send per hour within the duty cycle."""
        return int(self.params.duty_cycle * 3600.0 // self.airtime_s(bytes_per_msg))

    def transmit(self, t_s: float, n_msgs_per_node: np.ndarray, bytes_per_msg: int, dt_s: float = 1.0) -> Delivery:
        """Send what the duty-cycle allowance permits (rest refused), then ALOHA collisions."""
        p = self.params
        offered = self._counts(n_msgs_per_node)
        cap_s = p.duty_cycle * 3600.0
        self._bucket_s = np.minimum(self._bucket_s + p.duty_cycle * dt_s, cap_s)
        if self.down:
            return self._all_refused(offered, np.zeros_like(offered))
        air = self.airtime_s(bytes_per_msg)
        sent = np.minimum(offered, np.floor(self._bucket_s / air + 1e-9).astype(np.int64))
        self._bucket_s = self._bucket_s - sent * air
        g = self._per_cell(sent * air) / dt_s  # normalised offered airtime per receiver
        p_ok = (1.0 - p.base_loss) * np.exp(-2.0 * g)[self.cell_of_node]
        delivered = self.rng.binomial(sent, p_ok)
        delay = np.full(self.n_nodes, p.latency_s + air)
        return Delivery(
            offered=offered,
            delivered=delivered,
            lost=sent - delivered,
            refused=offered - sent,
            queued=np.zeros_like(offered),
            delay_s=_delays(delivered, delay),
            node_down=np.zeros(self.n_nodes, dtype=bool),
            link_down=False,
            load=self._per_cell(offered * air) / dt_s,
            utilisation=np.minimum(g, 1.0),
        )
