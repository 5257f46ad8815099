"""Demand-response state: curtailment of flexible loads, energy not served, and rebound on release."""

from __future__ import annotations

import numpy as np

FLEX_TAN_PHI = 0.15  # reactive share of rebounding flexible load (mostly resistive heating)


class Flexibility:
    """Caps the flexible load of selected homes and pays the deferred energy back after release."""

    def __init__(self, n: int) -> None:
        self.curtailed = np.zeros(n, dtype=bool)
        self.limit_w = np.zeros(n)
        self.backlog_j = np.zeros(n)  # deferred energy still to be served
        self.not_served_j = np.zeros(n)  # cumulative energy cut by curtailment
        self.rebound_w = np.zeros(n)  # rebound power cap for released homes (0 = no rebound)
        self.last_delta_p = np.zeros(n)  # change applied to the last step's mean power (W)
        self.last_delta_q = np.zeros(n)

        self.active = False  # any curtailment, pending rebound or last-step adjustment

    def _refresh(self) -> None:
        self.active = bool(self.curtailed.any() or (self.backlog_j > 0).any() or self.last_delta_p.any())

    def curtail(self, mask: np.ndarray, limit_w: float | np.ndarray) -> None:
        """Cap flexible load of masked homes at limit_w (W) from the next step on."""
        mask = np.asarray(mask, dtype=bool)
        self.curtailed |= mask
        self.limit_w = np.where(mask, np.broadcast_to(limit_w, mask.shape), self.limit_w)
        self._refresh()

    def release(self, mask: np.ndarray, rebound_w: float | np.ndarray = 2000.0) -> None:
        """End curtailment; deferred energy comes back at up to rebound_w per home (0 = energy dropped)."""
        mask = np.asarray(mask, dtype=bool)
        self.curtailed &= ~mask
        rb = np.broadcast_to(np.asarray(rebound_w, dtype=float), mask.shape)
        self.rebound_w = np.where(mask, rb, self.rebound_w)
        self.backlog_j = np.where(mask & (rb <= 0), 0.0, self.backlog_j)
        self._refresh()

    def apply(
        self, e_p: np.ndarray, e_q: np.ndarray, e_fp: np.ndarray, e_fq: np.ndarray, dt: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Adjust step energies (J) in place for curtailment and rebound; returns them."""
        cut = np.where(self.curtailed, np.maximum(e_fp - self.limit_w * dt, 0.0), 0.0)
        ratio = np.divide(e_fq, e_fp, out=np.zeros_like(e_fp), where=e_fp > 0)
        cut_q = cut * ratio
        self.backlog_j += cut
        self.not_served_j += cut
        back = np.where(self.curtailed, 0.0, np.minimum(self.backlog_j, self.rebound_w * dt))
        self.backlog_j -= back
        e_p += back - cut
        e_q += back * FLEX_TAN_PHI - cut_q
        self.last_delta_p = (back - cut) / dt
        self.last_delta_q = (back * FLEX_TAN_PHI - cut_q) / dt
        self._refresh()
        return e_p, e_q
