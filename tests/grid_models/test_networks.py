"""load_network: SimBench codes, built-in names, vector groups, cache and errors."""

from __future__ import annotations

import random

import numpy as np
import pytest

from gridloop.grid_models.network_names import BUILTIN_NAMES, network_name_problem, simbench_codes
from gridloop.grid_models.networks import BUILTIN_NETWORKS, cache_dir, is_simbench_code, load_network
from gridloop.grid_models.solvers import make_solver


def test_simbench_code_loads_with_vector_group_and_profiles(get_net) -> None:
    net = get_net("1-LV-rural1--0-sw")
    assert len(net.bus) == 15 and len(net.load) == 13
    assert (net.trafo.vector_group == "Dyn").all()
    assert "load" in net.profiles and len(net.profiles["load"]) == 35136
    assert any(p.name.startswith("1-LV-rural1--0-sw__") for p in cache_dir().glob("*.pkl"))


def test_cached_simbench_load_is_fresh_copy(get_net) -> None:
    first = load_network("1-LV-rural1--0-sw")
    first.load["p_mw"] = 123.0
    second = load_network("1-LV-rural1--0-sw")
    assert (second.load.p_mw < 1.0).all()


@pytest.mark.parametrize("name", ["kerber_landnetz_kabel_1", "create_kerber_landnetz_kabel_1", "cigre_lv"])
def test_builtin_names(name: str) -> None:
    net = load_network(name)
    assert len(net.bus) > 10
    assert net.trafo.vector_group.notna().all()


def test_kerber_draws_leave_the_callers_random_state_alone() -> None:
    """pandapower's Kerber builders draw cable types with Python's random, seeded from the scenario's seed
    (test_network_seeds.py compares the nets); the caller's random state is left as it was."""
    random.seed(99)
    before = random.random()
    random.seed(99)
    first = load_network("kerber_landnetz_kabel_1", seed=5).line.std_type.tolist()
    assert random.random() == before
    assert first != load_network("kerber_landnetz_kabel_1", seed=6).line.std_type.tolist()


def test_unknown_name_lists_valid_kinds_and_the_closest_code() -> None:
    with pytest.raises(ValueError, match="cigre_lv") as err:
        load_network("no-such-grid")
    assert "SimBench code" in str(err.value)
    with pytest.raises(ValueError, match="did you mean '1-MVLV-rural-all-0-sw'"):
        load_network("1-MVLV-rural-all-0-sww")
    assert "did you mean '1-MVLV-urban-5.303-1-no_sw'" in network_name_problem("1-MVLV-urban-5.303-1-nosw")


def test_simbench_codes_are_simbench_own_list() -> None:
    """The light list validate uses is SimBench's own, and names every code SimBench accepts, MV+LV included."""
    import simbench as sb

    assert simbench_codes() == set(sb.collect_all_simbench_codes())
    assert set(BUILTIN_NAMES) == set(BUILTIN_NETWORKS)
    for code in ("1-LV-urban6--0-sw", "1-MV-rural--2-no_sw", "1-MVLV-rural-all-0-sw", "1-MVLV-urban-5.303-1-no_sw",
                 "1-MV-rural--0-sw", "1-LV-rural1--0-sw", "1-HVMV-mixed-all-1-sw", "1-EHVHVMVLV-mixed-all-0-sw"):
        assert is_simbench_code(code) and network_name_problem(code) is None, code
    assert not is_simbench_code("cigre_lv")
    for name in ("1-MVLV-rural--0-sw", "1-LV-rural1-all-0-sw", "1-MVLV-rural-9.999-0-sw"):
        assert not is_simbench_code(name) and network_name_problem(name) is not None, name
    assert network_name_problem("create_kerber_dorfnetz") is None


def test_mv_lv_code_loads_and_solves_on_pgm(get_net) -> None:
    """An MV grid with one of its LV grids: 110/20 kV and 20/0.4 kV transformers, solved by power-grid-model."""
    net = get_net("1-MVLV-rural-1.108-0-sw")
    assert sorted(net.trafo.vn_lv_kv.tolist()) == [0.4, 20.0, 20.0] and len(net.ext_grid) == 1
    lv = net.bus.vn_kv.to_numpy() < 1.0
    assert lv.sum() == 14
    solver = make_solver(net, "pgm")
    solver.set_loads(net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy())
    vm = solver.solve().bus_vm_pu
    assert np.isfinite(vm).all() and 0.9 < vm[lv].min() < vm[lv].max() < 1.1


def test_an_mv_grid_alone_has_no_homes_and_says_so(get_net) -> None:
    """An MV-only SimBench code loads, but a run needs homes: building its demand names grid.network and the fix."""
    from datetime import UTC, datetime

    from gridloop.profiles.demand import build_demand
    from gridloop.scenario.loader import ScenarioError
    from gridloop.scenario.model import Households

    net = get_net("1-MV-rural--0-sw")
    assert len(net.load) > 0 and (net.bus.vn_kv >= 20).all()
    with pytest.raises(ScenarioError) as err:
        build_demand(net, Households(), datetime(2026, 1, 15, tzinfo=UTC), 60_000, seed=1)
    [problem] = err.value.problems
    assert problem.field == "grid.network" and "1-MVLV-rural-all-0-sw" in problem.reason
