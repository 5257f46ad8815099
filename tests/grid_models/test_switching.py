"""Opening a switch de-energises exactly the buses behind it (0 V, not NaN); closing restores them."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pandapower.topology as top
import pytest

from gridloop.grid_models.base import GridSolver
from gridloop.grid_models.pandapower_solver import PandapowerSolver
from gridloop.grid_models.pgm_solver import PgmSolver


def _expected_dead(net: pp.pandapowerNet, switch: int) -> np.ndarray:
    """Independent answer from pandapower's graph search: buses unsupplied once ``switch`` opens."""
    probe = copy.deepcopy(net)
    probe.switch.at[switch, "closed"] = False
    dead = top.unsupplied_buses(probe)
    return probe.bus.index.isin(list(dead))


def _largest_feeder_switch(net: pp.pandapowerNet) -> tuple[int, np.ndarray]:
    best = max(net.switch.index[net.switch.et == "l"], key=lambda s: _expected_dead(net, s).sum())
    return int(best), _expected_dead(net, best)


def _solvers(net: pp.pandapowerNet) -> list[GridSolver]:
    return [PgmSolver(net), PandapowerSolver(net)]


def _check_dead(state, dead: np.ndarray, net: pp.pandapowerNet) -> None:
    np.testing.assert_array_equal(state.bus_energized, ~dead)
    assert not np.isnan(state.bus_vm_pu).any()
    assert (state.bus_vm_pu[dead] == 0).all() and (state.bus_vm_pu[~dead] > 0.9).all()
    load_dead = dead[net.bus.index.get_indexer(net.load.bus)]
    assert (state.load_p_mw[load_dead] == 0).all()
    assert (state.load_p_mw[~load_dead] > 0).all()
    line_dead = dead[net.bus.index.get_indexer(net.line.from_bus)] & dead[net.bus.index.get_indexer(net.line.to_bus)]
    assert (state.line_loading_percent[line_dead] == 0).all()


def test_feeder_switch_deenergises_downstream_buses(get_net) -> None:
    net = get_net("1-LV-rural1--0-sw")
    switch, dead = _largest_feeder_switch(net)
    assert 2 <= dead.sum() < len(net.bus) - 2
    states = {}
    for solver in _solvers(net):
        before = solver.solve()
        solver.set_switch(switch, False)
        opened = solver.solve()
        _check_dead(opened, dead, net)
        solver.set_switch(switch, True)
        closed = solver.solve()
        assert closed.bus_energized.all()
        np.testing.assert_allclose(closed.bus_vm_pu, before.bus_vm_pu, atol=1e-9)
        states[type(solver).__name__] = opened
    a, b = states.values()
    np.testing.assert_allclose(a.bus_vm_pu, b.bus_vm_pu, atol=1e-6)
    np.testing.assert_allclose(a.line_loading_percent, b.line_loading_percent, rtol=1e-5, atol=1e-4)


def test_transformer_switch_deenergises_whole_lv_grid(get_net) -> None:
    net = get_net("1-LV-rural1--0-sw")
    switch = int(net.switch.index[(net.switch.et == "t") & (net.switch.bus == net.trafo.lv_bus.iloc[0])][0])
    dead = _expected_dead(net, switch)
    assert dead.sum() == len(net.bus) - 1  # only the HV slack bus stays alive
    for solver in _solvers(net):
        solver.set_switch(switch, False)
        state = solver.solve()
        _check_dead(state, dead, net)
        assert state.trafo_loading_percent[0] < 1.0  # only no-load current left


def test_bus_bus_switch_is_a_link(get_net) -> None:
    net = get_net("cigre_lv")
    assert (net.switch.et == "b").all()
    switch = int(net.switch.index[1])
    dead = _expected_dead(net, switch)
    assert dead.sum() >= 3
    states = []
    for solver in _solvers(net):
        solver.set_switch(switch, False)
        states.append(solver.solve())
        _check_dead(states[-1], dead, net)
    np.testing.assert_allclose(states[0].bus_vm_pu, states[1].bus_vm_pu, atol=1e-6)


def test_unknown_switch_raises(get_net) -> None:
    net = get_net("cigre_lv")
    with pytest.raises(KeyError):
        PgmSolver(net).set_switch(999, False)
    with pytest.raises(KeyError):
        PandapowerSolver(net).set_switch(999, False)


def test_initially_open_switch_in_net_is_respected(get_net) -> None:
    net = get_net("1-LV-rural1--0-sw")
    switch, dead = _largest_feeder_switch(net)
    net.switch.at[switch, "closed"] = False
    for solver in _solvers(net):
        _check_dead(solver.solve(), dead, net)


def test_out_of_service_line_and_bus_match_pandapower(get_net) -> None:
    net = get_net("kerber_landnetz_kabel_1")
    leaf_bus = int(net.load.bus.iloc[-1])
    net.line.loc[net.line.to_bus == leaf_bus, "in_service"] = False  # cut one home off
    net.bus.loc[int(net.load.bus.iloc[0]), "in_service"] = False  # and take another bus out
    a, b = PgmSolver(net).solve(), PandapowerSolver(net).solve()
    np.testing.assert_array_equal(a.bus_energized, b.bus_energized)
    assert (~b.bus_energized).sum() >= 2
    np.testing.assert_allclose(a.bus_vm_pu, b.bus_vm_pu, atol=1e-6)
    np.testing.assert_allclose(a.load_p_mw, b.load_p_mw, atol=1e-12)
    assert (a.load_p_mw[[0, -1]] == 0).all()
