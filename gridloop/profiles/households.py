"""Static per-home attributes drawn once per fleet: size, phase, ownership, appliance sizes, habits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridloop.profiles.appliances import ALL_CLASSES, ownership_prob
from gridloop.profiles.params import HouseholdParams

CLASS_INDEX = {c.name: i for i, c in enumerate(ALL_CLASSES)}


@dataclass
class Households:
    """Structure-of-arrays description of n homes (one row per home)."""

    size: np.ndarray  # occupants
    worker: np.ndarray  # bool: home empties on working days
    three_phase: np.ndarray  # bool
    phase: np.ndarray  # connection phase (single-phase homes), 0/1/2
    multiplier: np.ndarray  # consumption multiplier, population mean 1
    owns: np.ndarray  # (n, n_classes) bool
    class_phase: np.ndarray  # (n, n_classes) phase each appliance class is wired to
    fridge_w: np.ndarray
    freezer_w: np.ndarray
    cold_period_s: np.ndarray  # (n, 2)
    cold_offset_s: np.ndarray  # (n, 2)

    @property
    def n(self) -> int:
        return int(self.size.shape[0])


def draw_households(rng: np.random.Generator, n: int, params: HouseholdParams) -> Households:
    """Draw a population of homes; multipliers are normalised by their expectation, not the sample."""
    probs = np.asarray(params.size_probs, dtype=float)
    probs /= probs.sum()
    sizes = np.arange(1, len(probs) + 1)
    size = rng.choice(sizes, n, p=probs)
    size_effect = size**0.45 / float((sizes**0.45 * probs).sum())
    sigma = params.home_sigma
    multiplier = size_effect * rng.lognormal(-0.5 * sigma**2, sigma, n)
    three_phase = rng.random(n) < params.three_phase_share
    phase = rng.integers(0, 3, n)
    k = len(ALL_CLASSES)
    own_p = np.array([ownership_prob(c, params) for c in ALL_CLASSES])
    owns = rng.random((n, k)) < own_p
    class_phase = np.where(three_phase[:, None], rng.integers(0, 3, (n, k)), phase[:, None])
    return Households(
        size=size,
        worker=rng.random(n) < params.worker_share,
        three_phase=three_phase,
        phase=phase,
        multiplier=multiplier,
        owns=owns,
        class_phase=class_phase,
        fridge_w=rng.uniform(70, 130, n),
        freezer_w=rng.uniform(90, 160, n),
        cold_period_s=rng.uniform(2400, 4200, (n, 2)),
        cold_offset_s=rng.uniform(0, 4200, (n, 2)),
    )
