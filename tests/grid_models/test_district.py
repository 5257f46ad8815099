"""The SimBench district: seeded, one copy per substation with distinct names, PGM agrees with pandapower."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest

from gridloop.grid_models.district import build_simbench_district, lv_type_order
from gridloop.grid_models.pandapower_solver import PandapowerSolver
from gridloop.grid_models.pgm_solver import PgmSolver

TYPES = ["1-LV-rural1--0-sw", "1-LV-semiurb4--0-sw"]  # the two smallest LV grids: 15 and 44 buses


@pytest.fixture(scope="module")
def ring(get_net):
    return build_simbench_district(5, TYPES, mv="ring", seed=4, per_feeder=3, load_lv=get_net)


def test_seeded_and_one_lv_grid_per_substation(ring, get_net) -> None:
    again = build_simbench_district(5, TYPES, mv="ring", seed=4, per_feeder=3, load_lv=get_net)
    other = build_simbench_district(5, TYPES, mv="ring", seed=5, per_feeder=3, load_lv=get_net)
    for table in ("bus", "line", "trafo", "load", "sgen", "switch"):
        assert ring[table].equals(again[table]), table
    assert not np.allclose(ring.line.length_km, other.line.length_km)  # MV sections are drawn from the seed
    one = {code: get_net(code) for code in TYPES}
    order = lv_type_order(TYPES, 5, 4)
    assert sorted(order) == sorted(TYPES * 2 + TYPES[:1])  # round robin: counts differ by at most one
    assert len(ring.trafo) == 5 and len(ring.ext_grid) == 1
    assert len(ring.load) == sum(len(one[c].load) for c in order)
    assert len(ring.bus) == sum(len(one[c].bus) for c in order) + 1  # plus the MV root
    for table in ("bus", "load", "line", "trafo"):
        assert ring[table].name.is_unique, table
        assert (ring[table].index == np.arange(len(ring[table]))).all(), table
    prefixes = ring.load.name.str.split("/").str[0]
    assert sorted(prefixes.unique()) == [f"s00{i}" for i in range(1, 6)]
    assert (ring.load.groupby(prefixes).size().to_numpy() == [len(one[c].load) for c in order]).all()


def test_ring_has_one_open_point_per_feeder_and_radial_none(ring, get_net) -> None:
    nop = ring.switch[~ring.switch.closed & ring.switch.name.str.contains("NOP", na=False)]
    assert len(nop) == 2  # 5 substations, 3 a feeder: two rings
    radial = build_simbench_district(5, TYPES, mv="radial", seed=4, per_feeder=3, load_lv=get_net)
    assert not radial.switch.name.str.contains("NOP", na=False).any()
    assert len(ring.line) - len(radial.line) == 2  # each ring's return section
    pp.runpp(ring)  # the open rings are still radial: everything is supplied
    assert ring.res_bus.vm_pu.notna().all() and (ring.res_bus.vm_pu > 0.9).all()


def test_pgm_agrees_with_pandapower_on_the_district(ring) -> None:
    pgm, ref = PgmSolver(ring), PandapowerSolver(ring, tolerance_mva=1e-10)
    rng = np.random.default_rng(7)
    f = rng.uniform(0.0, 2.5, len(ring.load))
    for s in (pgm, ref):
        s.set_loads(ring.load.p_mw.to_numpy() * f, ring.load.q_mvar.to_numpy() * f)
    a, b = pgm.solve(), ref.solve()
    assert a.bus_energized.all() and b.bus_energized.all()
    assert np.ptp(b.bus_vm_pu) > 1e-3
    np.testing.assert_allclose(a.bus_vm_pu, b.bus_vm_pu, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.trafo_loading_percent, b.trafo_loading_percent, rtol=1e-4, atol=1e-4)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="mv must be"):
        build_simbench_district(2, TYPES, mv="mesh")
    with pytest.raises(ValueError, match="lv_types"):
        build_simbench_district(2, [])


def test_district_profiles_equal_simbench_absolute_values(ring) -> None:
    """The factored profiles (one column per profile) give what simbench.get_absolute_values gives per load."""
    from datetime import UTC, datetime

    import simbench as sb

    from gridloop.profiles.simbench_household import QUARTER_S, SimbenchHouseholds

    start = datetime(2016, 1, 1, tzinfo=UTC)  # the profiles' first quarter
    homes = SimbenchHouseholds.from_net(ring, start, 60.0, 0, None, 3000.0, 0.0)
    absolute = sb.get_absolute_values(ring, profiles_instead_of_study_cases=True)
    scale = np.ones(len(ring.load))
    annual = absolute[("load", "p_mw")].to_numpy()[:, homes.load_index].sum(axis=0) * QUARTER_S / 3600.0
    scale[homes.load_index] = 3.0 / annual
    for quarter in (0, 70, 20_000):
        p, q = homes.at(quarter * QUARTER_S)
        np.testing.assert_allclose(p, absolute[("load", "p_mw")].to_numpy()[quarter] * scale, rtol=1e-12)
        np.testing.assert_allclose(q, absolute[("load", "q_mvar")].to_numpy()[quarter] * scale, rtol=1e-12)
        np.testing.assert_allclose(homes.sgen_at(quarter * QUARTER_S),
                                   absolute[("sgen", "p_mw")].to_numpy()[quarter], rtol=1e-12)
