"""load_network: SimBench codes, built-in names, vector groups, cache and errors."""

from __future__ import annotations

import random

import pytest

from gridloop.grid_models.networks import cache_dir, is_simbench_code, load_network


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


def test_kerber_cable_types_are_drawn_from_the_seed() -> None:
    """pandapower's Kerber builders draw cable types with Python's random: the seed fixes them, the caller's
    random state is left alone."""
    random.seed(99)
    before = random.random()
    random.seed(99)
    first = load_network("kerber_dorfnetz", seed=5).line.std_type.tolist()
    assert random.random() == before
    assert load_network("kerber_dorfnetz", seed=5).line.std_type.tolist() == first
    others = [load_network("kerber_dorfnetz", seed=k).line.std_type.tolist() for k in (6, 7)]
    assert any(o != first for o in others)


def test_unknown_name_lists_valid_kinds() -> None:
    with pytest.raises(ValueError, match="cigre_lv") as err:
        load_network("no-such-grid")
    assert "SimBench code" in str(err.value)


def test_simbench_code_pattern() -> None:
    assert is_simbench_code("1-LV-urban6--0-sw")
    assert is_simbench_code("1-MV-rural--2-no_sw")
    assert not is_simbench_code("cigre_lv")
