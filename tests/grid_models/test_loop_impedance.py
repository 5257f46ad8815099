"""Each bus's loop impedance to its transformer agrees with the power flow's voltage change to first order."""

from __future__ import annotations

import numpy as np
import pandapower as pp

from gridloop.grid_models.loop_impedance import bus_impedance
from gridloop.profiles.demand import household_loads

DP_W = 3000.0


def test_a_homes_balanced_load_step_moves_its_voltage_as_the_path_impedance_says(get_net):
    net = get_net("1-LV-urban6--0-sw")
    imp = bus_impedance(net)
    pos = {b: i for i, b in enumerate(net.bus.index)}
    homes = net.load.bus.to_numpy()[household_loads(net)]
    buses = [int(homes[k]) for k in np.argsort([imp.line_r[pos[b]] for b in homes])[[0, len(homes) // 2, -1]]]
    # a lightly loaded grid: under a heavy base flow the transformer's reactance adds a second-order part
    net.load.p_mw *= 0.05
    net.load.q_mvar *= 0.05
    net.sgen.p_mw = 0.0
    pp.runpp(net)
    base = net.res_bus.vm_pu.copy()
    r, _ = imp.home_loop(np.array([pos[b] for b in buses]), np.full(3, -1))  # balanced: a third per phase
    assert (imp.trafo[[pos[b] for b in buses]] == 0).all() and (r > 0).all()
    for b, r_home in zip(buses, r, strict=True):
        extra = pp.create_load(net, b, p_mw=DP_W * 1e-6, q_mvar=0.0)
        pp.runpp(net)
        v_ph = base.at[b] * net.bus.vn_kv.at[b] * 1000 / np.sqrt(3)
        dv = (base.at[b] - net.res_bus.vm_pu.at[b]) * net.bus.vn_kv.at[b] * 1000 / np.sqrt(3)
        assert abs(dv - r_home * DP_W / v_ph) <= 0.03 * dv, (b, dv, r_home * DP_W / v_ph)
        net.load.drop(extra, inplace=True)
    # single-phase: phase and neutral, so six times a third of the line part, the transformer's three times
    p = pos[buses[-1]]
    r1, _ = imp.home_loop(np.array([p]), np.array([0]))
    assert np.isclose(r1[0], 2 * imp.line_r[p] + imp.trafo_r[p])
