"""Per-phase bus voltages during a fault from power-grid-model (pandapower's calc_sc gives none for 1ph/2ph)."""

from __future__ import annotations

import numpy as np
import pandapower as pp
from power_grid_model import CalculationMethod, ComponentType, FaultPhase, FaultType, PowerGridModel, initialize_array

from gridloop.grid_models.pgm_input import SOURCE_SK_VA, build_pgm_input

_PGM_FAULT = {"3ph": FaultType.three_phase, "2ph": FaultType.two_phase, "1ph": FaultType.single_phase_to_ground}


def pgm_phase_voltages(
    net: pp.pandapowerNet, fault_bus: int, fault: str, r_fault_ohm: float, x_fault_ohm: float, case: str
) -> np.ndarray:
    """Per-phase bus voltages (n_bus, 3) during the fault from power-grid-model's IEC 60909 calculation."""
    data, _ = build_pgm_input(net, symmetric=False)
    src = data[ComponentType.source]
    eg = net.ext_grid[net.ext_grid.in_service.astype(bool)]
    col = "s_sc_max_mva" if case == "max" else "s_sc_min_mva"
    src["sk"] = eg[col].fillna(SOURCE_SK_VA / 1e6).to_numpy(dtype=float) * 1e6
    src["rx_ratio"] = eg[col.replace("s_sc", "rx").replace("_mva", "")].fillna(0.1).to_numpy(dtype=float)
    flt = initialize_array("input", ComponentType.fault, 1)
    flt["id"] = max(int(a["id"].max()) for a in data.values() if len(a)) + 1
    flt["status"] = 1
    flt["fault_object"] = net.bus.index.get_loc(fault_bus)
    flt["fault_type"] = _PGM_FAULT[fault]
    flt["fault_phase"] = FaultPhase.default_value
    flt["r_f"], flt["x_f"] = r_fault_ohm, x_fault_ohm
    data[ComponentType.fault] = flt
    out = PowerGridModel(data, system_frequency=float(net.f_hz)).calculate_short_circuit(
        calculation_method=CalculationMethod.iec60909,
        short_circuit_voltage_scaling="maximum" if case == "max" else "minimum",
        output_component_types={ComponentType.node: ["energized", "u_pu"]},
    )
    node = out[ComponentType.node]
    return np.where(node["energized"][:, None].astype(bool), np.nan_to_num(node["u_pu"]), 0.0)
