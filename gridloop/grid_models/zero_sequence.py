"""Fill the zero-sequence data per-phase power flows need but most network files lack."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandapower as pp

# Rough low-voltage cable ratios (4-core cable, neutral return) used only where data is missing.
LINE_R0_R1 = 4.0
LINE_X0_X1 = 4.0
LINE_C0_C1 = 1.0


def _fill(df: object, col: str, values: np.ndarray | float) -> None:
    values = np.broadcast_to(np.asarray(values, dtype=float), (len(df),))
    if col not in df.columns:
        df[col] = values
    else:
        current = df[col].to_numpy(dtype=float)
        df[col] = np.where(np.isnan(current), values, current)


def add_zero_sequence_defaults(net: pp.pandapowerNet, ext_grid_s_sc_mva: float = 1e8) -> pp.pandapowerNet:
    """Add missing zero-sequence columns in place (existing values are kept) and return ``net``.

    Vector groups lose their clock digits (``Dyn5`` -> ``Dyn``) as runpp_3ph requires.

    The ext_grid gets a near-ideal ``ext_grid_s_sc_mva`` so that runpp_3ph and power-grid-model
    (whose source cannot copy pandapower's finite negative-sequence impedance) agree.
    """
    eg = net.ext_grid
    _fill(eg, "s_sc_max_mva", ext_grid_s_sc_mva)
    _fill(eg, "s_sc_min_mva", ext_grid_s_sc_mva)
    for col in ("rx_max", "rx_min", "r0x0_max", "r0x0_min"):
        _fill(eg, col, 0.1)
    for col in ("x0x_max", "x0x_min"):
        _fill(eg, col, 1.0)
    tr = net.trafo
    if len(tr):
        # runpp_3ph wants the bare group ('Dyn', not 'Dyn5'); the clock lives in shift_degree
        tr["vector_group"] = tr["vector_group"].astype(str).str.rstrip("0123456789")
        _fill(tr, "vk0_percent", tr.vk_percent.to_numpy(dtype=float))
        _fill(tr, "vkr0_percent", tr.vkr_percent.to_numpy(dtype=float))
        _fill(tr, "mag0_percent", 100.0)
        _fill(tr, "mag0_rx", 0.0)
        _fill(tr, "si0_hv_partial", 0.9)
    ln = net.line
    if len(ln):
        _fill(ln, "r0_ohm_per_km", LINE_R0_R1 * ln.r_ohm_per_km.to_numpy(dtype=float))
        _fill(ln, "x0_ohm_per_km", LINE_X0_X1 * ln.x_ohm_per_km.to_numpy(dtype=float))
        _fill(ln, "c0_nf_per_km", LINE_C0_C1 * ln.c_nf_per_km.to_numpy(dtype=float))
    return net
