"""Wireless M-Bus 868 MHz, mode S1 (Turin's water meters): duty-cycle limited, unacknowledged ALOHA.

Parameters and why: ``docs/links.md`` (wireless M-Bus).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridloop.virtual_meters.links.base import Delivery, Link, delays_where_delivered


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
            delay_s=delays_where_delivered(delivered, delay),
            node_down=np.zeros(self.n_nodes, dtype=bool),
            link_down=False,
            load=self._per_cell(offered * air) / dt_s,
            utilisation=np.minimum(g, 1.0),
        )
