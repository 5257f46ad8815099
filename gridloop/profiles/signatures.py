"""Appliance power signatures as piecewise-constant segments (ramps, inrush, thermostat cycles).

Each builder draws `e` activations and returns integer segment durations (s) and powers (W), both (e, M).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Signature = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]


def _stack(durs: list[np.ndarray], pows: list[np.ndarray], e: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.column_stack([np.broadcast_to(x, (e,)) for x in durs])
    p = np.column_stack([np.broadcast_to(x, (e,)) for x in pows])
    return np.maximum(np.rint(d), 0).astype(np.int64), p.astype(np.float64)


def _cycles(
    rng: np.random.Generator, e: int, n: int, on: tuple[float, float], off: tuple[float, float],
    p_on: np.ndarray, p_off: np.ndarray | float,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Thermostat/agitation cycling: n (on, off) pairs with jittered durations."""
    durs: list[np.ndarray] = []
    pows: list[np.ndarray] = []
    off_p = np.broadcast_to(p_off, (e,))
    for _ in range(n):
        durs += [rng.uniform(*on, e), rng.uniform(*off, e)]
        pows += [p_on * rng.uniform(0.97, 1.0, e), off_p]
    return durs, pows


def kettle(rng: np.random.Generator, e: int) -> tuple[np.ndarray, np.ndarray]:
    p = rng.uniform(1800, 2400, e)
    return _stack([2, rng.uniform(90, 240, e), 15], [0.6 * p, p, 0.96 * p], e)


def microwave(rng: np.random.Generator, e: int) -> tuple[np.ndarray, np.ndarray]:
    p = rng.uniform(1000, 1400, e)
    # at full power the magnetron runs through (60 % of uses); lower settings pulse it
    full = rng.random(e) < 0.6
    d, w = _cycles(rng, e, 4, (15, 70), (5, 20), p, np.where(full, 0.97 * p, 0.25 * p))
    return _stack(d, w, e)


def hob(rng: np.random.Generator, e: int) -> tuple[np.ndarray, np.ndarray]:
    p = rng.choice([1200.0, 1500.0, 1800.0, 2300.0], e) * rng.uniform(0.95, 1.05, e)
    # simmering: a radiant plate's energy regulator pulses within the minute (smooth at 1 min, visible at
    # 1 s); an induction zone (half of the hobs) modulates its power continuously around the setting
    on = p * rng.uniform(0.5, 1.0, e)
    induction = rng.random(e) < 0.5
    d, w = _cycles(rng, e, 24, (6, 30), (8, 40), on, 0.0)
    level = 0.45 * on
    w = [np.where(induction, level * rng.uniform(0.75, 1.25, e), x) for x in w]
    return _stack([2, rng.uniform(180, 600, e), *d], [0.5 * p, p, *w], e)


def oven(rng: np.random.Generator, e: int) -> tuple[np.ndarray, np.ndarray]:
    p = rng.uniform(1800, 2500, e)
    d, w = _cycles(rng, e, 24, (15, 45), (20, 80), p, 25.0)
    return _stack([rng.uniform(480, 900, e), *d], [p + 25.0, *w], e)


def washing_machine(rng: np.random.Generator, e: int) -> tuple[np.ndarray, np.ndarray]:
    heat = rng.uniform(1900, 2200, e) * (rng.random(e) < 0.8)
    d, w = _cycles(rng, e, 12, (30, 50), (15, 25), rng.uniform(180, 300, e), 15.0)
    return _stack(
        [rng.uniform(120, 240, e), rng.uniform(500, 1200, e), *d, rng.uniform(400, 800, e),
         rng.uniform(240, 480, e), 60],
        [np.full(e, 15.0), heat, *w, rng.uniform(80, 150, e), rng.uniform(350, 550, e), np.full(e, 100.0)], e,
    )


def dishwasher(rng: np.random.Generator, e: int) -> tuple[np.ndarray, np.ndarray]:
    p = rng.uniform(1900, 2200, e)
    return _stack(
        [rng.uniform(90, 180, e), rng.uniform(700, 1300, e), rng.uniform(1200, 2000, e),
         rng.uniform(400, 800, e), rng.uniform(900, 1500, e)],
        [np.full(e, 20.0), p, rng.uniform(60, 90, e), p, np.full(e, 8.0)], e,
    )


def tumble_dryer(rng: np.random.Generator, e: int) -> tuple[np.ndarray, np.ndarray]:
    p = rng.uniform(2000, 2600, e)
    d, w = _cycles(rng, e, 10, (200, 400), (40, 90), p, 220.0)
    return _stack([*d, rng.uniform(300, 700, e)], [*w, np.full(e, 220.0)], e)


def _session(rng: np.random.Generator, e: int, p: np.ndarray, mean_s: float) -> tuple[np.ndarray, np.ndarray]:
    """An appliance session (TV, computer) whose draw drifts between a few levels."""
    total = np.minimum(rng.lognormal(np.log(mean_s) - 0.18, 0.6, e), 6 * 3600)
    frac = rng.dirichlet(np.ones(4), e)
    lv = rng.uniform(0.8, 1.2, (e, 4))
    return _stack([total * frac[:, i] for i in range(4)], [p * lv[:, i] for i in range(4)], e)


def television(rng: np.random.Generator, e: int) -> tuple[np.ndarray, np.ndarray]:
    return _session(rng, e, rng.uniform(60, 180, e), 7200.0)


def computer(rng: np.random.Generator, e: int) -> tuple[np.ndarray, np.ndarray]:
    return _session(rng, e, rng.choice([40.0, 90.0, 250.0], e, p=[0.5, 0.35, 0.15]), 5400.0)


def comfort(rng: np.random.Generator, e: int) -> tuple[np.ndarray, np.ndarray]:
    """Hours-long small loads: bathroom floor heating, towel rail, dehumidifier, aquarium heater."""
    return _session(rng, e, rng.uniform(80, 300, e), 3 * 3600.0)


def water_heater(rng: np.random.Generator, e: int) -> tuple[np.ndarray, np.ndarray]:
    p = rng.choice([2000.0, 3000.0], e)
    return _stack(
        [rng.lognormal(np.log(1500), 0.4, e), rng.uniform(300, 1200, e), rng.uniform(60, 240, e)],
        [p, np.zeros(e), p], e,
    )


def compressor_cycle(p_run: np.ndarray, on_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cold-appliance compressor run: 1 s inrush, 2 s settle, warm start, then steady run."""
    e = p_run.shape[0]
    rest = np.maximum(on_s - 3.0, 1.0)
    return _stack([1, 2, 0.25 * rest, 0.75 * rest], [3.0 * p_run, 1.5 * p_run, 1.1 * p_run, p_run], e)


def compressor_energy(p_run: np.ndarray | float, on_s: np.ndarray | float) -> np.ndarray | float:
    """Energy (J) of one compressor run, for calibrating the duty cycle."""
    return 6.0 * p_run + 1.025 * p_run * (np.asarray(on_s) - 3.0)


def cleaning(rng: np.random.Generator, e: int) -> tuple[np.ndarray, np.ndarray]:
    """Vacuuming or ironing: bursts at 0.8-2 kW with short pauses."""
    p = rng.uniform(800, 2000, e)
    d, w = _cycles(rng, e, 4, (120, 480), (20, 120), p, 0.0)
    return _stack([1, *d], [0.5 * p, *w], e)


def ev_charge(rng: np.random.Generator, e: int) -> tuple[np.ndarray, np.ndarray]:
    """EV charging session: soft start, constant-current phase, then the battery's taper."""
    p = rng.choice([3680.0, 2300.0], e, p=[0.7, 0.3])
    energy_j = np.minimum(rng.lognormal(np.log(9.0) - 0.125, 0.5, e), 40.0) * 3.6e6
    taper_j = 0.6 * p * 600 + 0.3 * p * 300
    cc = np.maximum(energy_j - taper_j, 0.0) / p
    return _stack([5, cc, 600, 300], [0.5 * p, p, 0.6 * p, 0.3 * p], e)
