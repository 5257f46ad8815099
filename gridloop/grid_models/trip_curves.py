"""Time-current rules of the protective devices (simple documented curves, not manufacturer data).

* fuse (gG NH, pre-arcing ≈ clearing): t = 3125 s / (I/In)^4, i.e. 5 s at 5·In, 0.31 s at 10·In;
  no melting below 1.6·In (conventional fusing current); at least 0.01 s (current limiting).
* breaker: IEC 60255 standard inverse t = TMS·0.14 / ((I/Is)^0.02 − 1) with TMS 0.1, pickup
  Is = in_ka, plus 0.05 s breaker opening time; no trip at I ≤ Is.
"""

from __future__ import annotations

import numpy as np

FUSE_K_S = 3125.0
FUSE_EXPONENT = 4.0
FUSE_MIN_MELT = 1.6
FUSE_MIN_TIME_S = 0.01
RELAY_TMS = 0.1
BREAKER_OPENING_S = 0.05


def fuse_time_s(current_ka: np.ndarray, rated_ka: np.ndarray) -> np.ndarray:
    """gG fuse operating time (s) from the power-law melting curve; inf below 1.6·In."""
    m = np.asarray(current_ka, dtype=float) / np.asarray(rated_ka, dtype=float)
    with np.errstate(divide="ignore"):
        t = np.maximum(FUSE_K_S / m**FUSE_EXPONENT, FUSE_MIN_TIME_S)
    return np.where(m > FUSE_MIN_MELT, t, np.inf)


def breaker_time_s(current_ka: np.ndarray, pickup_ka: np.ndarray) -> np.ndarray:
    """IEC standard-inverse relay time plus breaker opening time (s); inf at or below pickup."""
    m = np.asarray(current_ka, dtype=float) / np.asarray(pickup_ka, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = RELAY_TMS * 0.14 / (np.power(np.maximum(m, 1.0), 0.02) - 1.0) + BREAKER_OPENING_S
    return np.where(m > 1.0, t, np.inf)
