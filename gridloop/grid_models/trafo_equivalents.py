"""Transformer parameter conversions that make power-grid-model reproduce pandapower's models.

pandapower's default two-winding model is a T (leakage split half/half around the
magnetising branch); power-grid-model uses a pi.  An exact T->pi conversion keeps the
two in agreement (docs/solver-agreement.md).
"""

from __future__ import annotations

import numpy as np

WINDINGS = {"y": 0, "yn": 1, "d": 2, "z": 3, "zn": 4}  # power_grid_model.WindingType values


def series_impedance_pu(vk_percent: np.ndarray, vkr_percent: np.ndarray) -> np.ndarray:
    """Short-circuit impedance in per unit of the transformer rating."""
    vk = np.asarray(vk_percent, dtype=float) / 100.0
    vkr = np.asarray(vkr_percent, dtype=float) / 100.0
    return vkr + 1j * np.sign(vk) * np.sqrt(np.maximum(vk**2 - vkr**2, 0.0))


def magnetising_admittance_pu(i0_percent: np.ndarray, pfe_kw: np.ndarray, sn_mva: np.ndarray) -> np.ndarray:
    """Magnetising admittance g - jb in per unit of the transformer rating (inductive)."""
    g = np.asarray(pfe_kw, dtype=float) / 1000.0 / np.asarray(sn_mva, dtype=float)
    y_abs = np.asarray(i0_percent, dtype=float) / 100.0
    b = np.sqrt(np.maximum(y_abs**2 - g**2, 0.0))
    return g - 1j * b


def t_to_pi(z: np.ndarray, ym: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact symmetric T (z/2, ym, z/2) to pi: series z' = z + z²·ym/4, total shunt y' = 1/(z/4 + 1/ym)."""
    z_pi = z + z * z * ym / 4.0
    y_pi = ym / (1.0 + z * ym / 4.0)
    return z_pi, y_pi


def pgm_trafo_params(
    vk_percent: np.ndarray,
    vkr_percent: np.ndarray,
    i0_percent: np.ndarray,
    pfe_kw: np.ndarray,
    sn_mva: np.ndarray,
    trafo_model: str = "t",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return PGM (uk, pk [W], i0, p0 [W]) per transformer, converted from T when ``trafo_model='t'``."""
    sn_w = np.asarray(sn_mva, dtype=float) * 1e6
    z = series_impedance_pu(vk_percent, vkr_percent)
    ym = magnetising_admittance_pu(i0_percent, pfe_kw, sn_mva)
    if trafo_model == "t":
        z, ym = t_to_pi(z, ym)
    elif trafo_model != "pi":
        raise ValueError(f"trafo_model must be 't' or 'pi', not {trafo_model!r}")
    return np.abs(z), z.real * sn_w, np.abs(ym), ym.real * sn_w


def dyn_zero_sequence_shunt_ohm(trafo: dict[str, np.ndarray], trafo_model: str = "t") -> np.ndarray:
    """pandapower's zero-sequence shunt impedance (Ω, LV side) of a Dyn transformer in runpp_3ph.

    y0 = 1/(z2 + z1 ∥ z3) with z1 = si0·z0k, z2 = (1-si0)·z0k, z3 the zero-sequence magnetising
    impedance (T model); 1/z0k for the pi model.  ``trafo`` holds the pandapower trafo columns.
    """
    vk = np.asarray(trafo["vk_percent"], dtype=float)
    vkr = np.asarray(trafo["vkr_percent"], dtype=float)
    vk0 = np.nan_to_num(np.asarray(trafo["vk0_percent"], dtype=float))
    vkr0 = np.nan_to_num(np.asarray(trafo["vkr0_percent"], dtype=float))
    vk0 = np.where(np.abs(vk0) > 1e-8, vk0, vk)
    vkr0 = np.where(np.abs(vkr0) > 1e-8, vkr0, vkr)
    parallel = np.asarray(trafo["parallel"], dtype=float)
    z_base = np.asarray(trafo["vn_lv_kv"], dtype=float) ** 2 / np.asarray(trafo["sn_mva"], dtype=float)
    z_sc = vk0 / 100.0 * z_base
    z0k = series_impedance_pu(vk0, vkr0) * z_base / parallel
    if trafo_model == "pi":
        return z0k
    mag0 = np.asarray(trafo["mag0_percent"], dtype=float) / 100.0
    mag0_rx = np.asarray(trafo["mag0_rx"], dtype=float)
    si0 = np.asarray(trafo["si0_hv_partial"], dtype=float)
    x_m = z_sc * mag0 / np.sqrt(mag0_rx**2 + 1.0)
    z3 = (x_m * mag0_rx + 1j * x_m) / parallel
    z1 = si0 * z0k
    z2 = (1.0 - si0) * z0k
    return (z1 * z2 + z2 * z3 + z1 * z3) / (z1 + z3)


def parse_vector_group(vector_group: str) -> tuple[int, int]:
    """'Dyn5' -> (WindingType.delta, WindingType.wye_n); unknown letters raise ValueError."""
    letters = "".join(c for c in str(vector_group) if c.isalpha())
    hv = letters[: len(letters) - len(letters.lstrip("DYZN"))]
    lv = letters[len(hv) :]
    try:
        return WINDINGS[hv.lower()], WINDINGS[lv.lower()]
    except KeyError:
        raise ValueError(f"cannot parse transformer vector group {vector_group!r}") from None


def valid_clock(shift_degree: np.ndarray, w_from: np.ndarray, w_to: np.ndarray) -> np.ndarray:
    """PGM clock number from pandapower's shift, nudged to the parity the windings require.

    Wye-delta pairs need an odd clock, same-kind pairs an even one (magnitudes are unaffected).
    """
    clock = np.rint(np.nan_to_num(np.asarray(shift_degree, dtype=float)) / 30.0).astype(np.int64) % 12
    delta_from = np.asarray(w_from) == WINDINGS["d"]
    delta_to = np.asarray(w_to) == WINDINGS["d"]
    need_odd = delta_from != delta_to
    wrong = (clock % 2 == 1) != need_odd
    return np.where(wrong, (clock + 1) % 12, clock)
