"""MV/LV coupling over HELICS: the split is exact, and the federation reproduces the whole-net solve."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gridloop.grid_models.coupling import split_at_substations
from gridloop.grid_models.coupling.federates import CouplingCase
from gridloop.grid_models.coupling.federation import run_coupled, solve_whole
from gridloop.grid_models.coupling.split import set_slack, solve, substation_power
from gridloop.grid_models.feeders import generate_district


def test_split_balances_power_and_voltages() -> None:
    net = generate_district(3, 2, 4, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        solve(net)
        split = split_at_substations(net)
        assert len(split.substations) == 3
        assert len(split.mv_net.bus) + sum(len(s.net.bus) - 1 for s in split.substations) == len(net.bus)
        assert sorted(i for s in split.substations for i in s.load_index) == list(net.load.index)
        for s in split.substations:
            set_slack(s, net.res_bus.vm_pu.at[s.mv_bus], net.res_bus.va_degree.at[s.mv_bus])
            solve(s.net)
            power = substation_power(s)
            assert power.real == pytest.approx(net.res_trafo.p_hv_mw.at[s.trafo], abs=1e-9)
            assert power.imag == pytest.approx(net.res_trafo.q_hv_mvar.at[s.trafo], abs=1e-9)
            np.testing.assert_allclose(s.net.res_bus.vm_pu, net.res_bus.vm_pu.loc[s.net.bus.index], atol=1e-9)
            split.mv_net.load.loc[s.mv_load, ["p_mw", "q_mvar"]] = power.real, power.imag
        total = net.res_trafo.p_hv_mw.sum()
        assert split.mv_net.load.p_mw.sum() == pytest.approx(total, abs=1e-9)
        solve(split.mv_net)
    np.testing.assert_allclose(split.mv_net.res_bus.vm_pu, net.res_bus.vm_pu.loc[split.mv_net.bus.index], atol=1e-9)


def test_helics_federation_matches_whole_net_for_1_and_2_partitions() -> None:
    case = CouplingCase(n_substations=4, n_feeders=2, homes_per_feeder=5, seed=3, n_steps=3, sweeps=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference, _ = solve_whole(case)
    lv_buses = set(reference) - set(split_at_substations(case.net()).mv_net.bus.index)
    runs = {n: run_coupled(case, n) for n in (1, 2)}
    for n, run in runs.items():
        assert len(run.reports) == n + 1
        coupled = run.lv_vm_pu()
        assert set(coupled) == lv_buses
        err = max(float(np.abs(v - reference[b]).max()) for b, v in coupled.items())
        assert err <= 1e-4, f"{n} partitions: {err}"
        assert err <= 1e-8, f"{n} partitions: same-step sweeps should converge far below the bound, got {err}"
        assert max(run.mv.residual) < 1e-6  # last sweep moved the slack voltages by less than this
    one, two = runs[1].lv_vm_pu(), runs[2].lv_vm_pu()
    for b in one:
        np.testing.assert_array_equal(one[b], two[b])
    # loads really change per step: the voltages differ step to step
    assert max(float(np.ptp(v)) for v in one.values()) > 2e-4


def test_a_federate_registers_when_the_ports_beside_the_brokers_are_taken() -> None:
    """Only the broker binds a port: a federate core must not need one of its own (with the zmq core type the
    broker hands each core a port next to its own, and a taken one, e.g. another client's ephemeral port, made
    federates fail to register in CI)."""
    import socket

    import helics as h

    from gridloop.grid_models.coupling.federates import _federate, _finish, create_broker

    broker, address = create_broker("gridloop-test", 1)
    port = int(address.rsplit(":", 1)[1])
    taken = []
    for p in range(port + 1, min(port + 40, 65535)):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            s.listen()
            taken.append(s)
        except OSError:
            s.close()
    try:
        fed = _federate("lonely", address)
        h.helicsFederateEnterExecutingMode(fed)
        assert h.helicsFederateRequestTime(fed, 1.0) == 1.0
        _finish(fed)
    finally:
        for s in taken:
            s.close()
        h.helicsBrokerWaitForDisconnect(broker, 5000)
        h.helicsBrokerFree(broker)
