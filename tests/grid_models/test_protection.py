"""Line faults: pandapower short-circuit current, the clearing fuse/breaker, voltage dip and outage."""

from __future__ import annotations

import copy

import numpy as np
import pandapower.topology as top
import pytest

from gridloop.grid_models.protection import simulate_line_fault
from gridloop.grid_models.trip_curves import breaker_time_s, fuse_time_s


def _feeder_lines(net, feeder: int) -> np.ndarray:
    return net.line.index[net.line.feeder == feeder].to_numpy()


def _fuse_of(net, feeder: int) -> int:
    first = _feeder_lines(net, feeder)[0]
    sw = net.switch[(net.switch.et == "l") & (net.switch.element == first) & (net.switch.protection == "fuse")]
    return int(sw.index[0])


@pytest.fixture(scope="module")
def hyllie_faults(get_net):
    """Feeder 0 of Hyllie (3 meter blocks): a fault near the busbar and one at the feeder end."""
    net = get_net("hyllie")
    lines = _feeder_lines(net, 0)
    assert lines.size == 3
    near = simulate_line_fault(net, int(lines[0]), 0.1)
    far = simulate_line_fault(net, int(lines[-1]), 1.0)
    return net, near, far


def test_feeder_fuse_clears_and_only_that_feeder_is_lost(hyllie_faults) -> None:
    net, near, far = hyllie_faults
    fuse = _fuse_of(net, 0)
    feeder_buses = np.sort(net.bus.index[net.bus.feeder == 0].to_numpy())
    for out in (near, far):
        assert out.clearing_switch == fuse
        np.testing.assert_array_equal(out.deenergised_buses, feeder_buses)
        opened = copy.deepcopy(net)
        opened.switch.at[fuse, "closed"] = False
        np.testing.assert_array_equal(out.deenergised_buses, np.sort(list(top.unsupplied_buses(opened))))
    assert net.switch.closed.all() and len(net.bus) == len(near.bus_vm_pu_during)  # input net left unchanged


def test_nearer_fault_has_higher_current_and_clears_faster(hyllie_faults) -> None:
    _, near, far = hyllie_faults
    assert near.fault_current_ka > 1.5 * far.fault_current_ka
    assert near.clearing_time_s < far.clearing_time_s < 5.0
    assert 1.0 < far.fault_current_ka < near.fault_current_ka < 25.0  # LV behind a 630 kVA, 6 % transformer
    assert near.device_current_ka == pytest.approx(near.fault_current_ka, rel=0.05)


def test_voltages_during_fault_dip_on_the_faulted_side(hyllie_faults) -> None:
    net, near, far = hyllie_faults
    vm = far.bus_vm_pu_during
    assert vm.shape == (len(net.bus),)
    pos = net.bus.index.get_indexer
    end_bus = int(net.line.at[_feeder_lines(net, 0)[-1], "to_bus"])
    assert vm[pos([end_bus])[0]] < 0.05  # bolted fault at that bus
    busbar0, busbar1 = (pos([b])[0] for b in net.trafo.lv_bus)
    assert vm[busbar0] < 0.95  # the substation feeding the fault sags ...
    assert vm[busbar1] > 0.97  # ... the other one (behind the stiff MV) hardly moves
    assert near.bus_vm_pu_during[busbar0] < vm[busbar0]  # a closer fault pulls the busbar down more
    other = pos(net.bus.index[net.bus.feeder == 4])  # a feeder of the other substation
    assert (near.bus_vm_pu_during[other] > 0.97).all()


def test_high_impedance_fault_is_not_cleared(get_net) -> None:
    net = get_net("hyllie")
    line = int(_feeder_lines(net, 0)[-1])
    out = simulate_line_fault(net, line, 0.5, r_fault_ohm=1.0)
    assert out.fault_current_ka < 0.5
    assert out.clearing_switch == -1 and np.isinf(out.clearing_time_s) and out.deenergised_buses.size == 0


def test_mv_fault_trips_the_ring_breaker(get_net) -> None:
    net = get_net("turin")
    first_mv = int(net.line.index[net.line.name == "T MV ring 1"][0])  # between S0 and S1
    out = simulate_line_fault(net, first_mv, 0.5, source_s_sc_mva=250.0)
    breaker = net.switch[(net.switch.protection == "breaker") & (net.switch.element == net.line.index[0])]
    assert out.clearing_switch == int(breaker.index[0])
    assert 1.0 < out.fault_current_ka < 250 / (np.sqrt(3) * 20) * 1.2
    assert 0.05 < out.clearing_time_s < 1.0
    lost = set(out.deenergised_buses)
    for s in range(3):  # S0..S2 hang off the tripped ring end, S3..S5 off the other one
        assert int(net.trafo.lv_bus.iloc[s]) in lost and int(net.trafo.lv_bus.iloc[s + 3]) not in lost
    opened = copy.deepcopy(net)
    opened.switch.at[out.clearing_switch, "closed"] = False
    assert lost == set(top.unsupplied_buses(opened))


def test_iec60909_source_gives_more_current_than_load_flow(get_net) -> None:
    net = get_net("hyllie")
    line = int(_feeder_lines(net, 0)[1])
    typ_c = simulate_line_fault(net, line, 0.5)
    iec = simulate_line_fault(net, line, 0.5, pre_fault="iec60909")
    assert iec.fault_current_ka > typ_c.fault_current_ka
    with pytest.raises(ValueError, match="position"):
        simulate_line_fault(net, line, 1.5)


def test_time_current_curves() -> None:
    i = np.array([0.3, 0.6, 1.5, 3.0, 10.0])
    t = fuse_time_s(i, np.full(5, 0.315))
    assert np.isinf(t[0]) and np.all(np.diff(t[1:]) < 0) and t[-1] == pytest.approx(0.01)
    assert fuse_time_s(np.array([3.15]), np.array([0.315]))[0] == pytest.approx(0.3125)
    tb = breaker_time_s(np.array([0.3, 4.0]), np.array([0.4, 0.4]))
    assert np.isinf(tb[0]) and tb[1] == pytest.approx(0.1 * 0.14 / (10**0.02 - 1) + 0.05)


def test_single_phase_fault_per_phase_voltages(hyllie_faults) -> None:
    net, _, far3 = hyllie_faults
    line = int(_feeder_lines(net, 0)[-1])
    out = simulate_line_fault(net, line, 1.0, fault="1ph")
    assert 0.3 * far3.fault_current_ka < out.fault_current_ka < far3.fault_current_ka
    assert out.clearing_switch == far3.clearing_switch and out.clearing_time_s > far3.clearing_time_s
    end = net.bus.index.get_loc(int(net.line.at[line, "to_bus"]))
    ph = out.bus_vm_pu_phase_during
    assert ph.shape == (len(net.bus), 3)
    assert ph[end, 0] < 0.05 and (ph[end, 1:] > 1.1).all()  # faulted L1 collapses, neutral shift lifts L2/L3
    np.testing.assert_allclose(out.bus_vm_pu_during, ph.min(axis=1))
    np.testing.assert_array_equal(out.deenergised_buses, far3.deenergised_buses)


def test_net_without_protection_or_short_circuit_data(get_net) -> None:
    net = get_net("1-LV-rural1--0-sw")  # SimBench: no s_sc, no zero sequence, sgens without k, no fuses
    out = simulate_line_fault(net, int(net.line.index[3]), 0.5)
    assert 1.0 < out.fault_current_ka < 30.0
    assert out.clearing_switch == -1 and np.isinf(out.clearing_time_s) and out.deenergised_buses.size == 0
    assert "s_sc_max_mva" not in net.ext_grid or net.ext_grid.s_sc_max_mva.isna().all()  # input untouched


def test_pgm_phase_voltages_consistent_with_pandapower_current(get_net) -> None:
    """Through a fault resistance the faulted phase sits at I·R_f: PGM's voltage vs pandapower's current."""
    net = get_net("hyllie")
    line = int(_feeder_lines(net, 0)[1])
    r_f = 0.05
    out = simulate_line_fault(net, line, 0.5, fault="1ph", r_fault_ohm=r_f, pre_fault="iec60909")
    v_expected = out.fault_current_ka * 1e3 * r_f / (400 / np.sqrt(3))
    # the auxiliary fault bus is not reported; the feeder end beyond it carries no current (loads are
    # ignored in IEC 60909), so it sits at the fault point's voltage
    end = net.bus.index.get_loc(int(net.line.at[int(_feeder_lines(net, 0)[-1]), "to_bus"]))
    assert out.bus_vm_pu_phase_during[end, 0] == pytest.approx(v_expected, rel=0.03)
