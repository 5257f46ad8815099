"""Every named network and generated feeder is a function of its seed: built twice, its tables are equal.

The builders that draw (pandapower's Kerber nets with Python's ``random``, the pilots and the generated feeders
with numpy) must also give another net for another seed.
"""

from __future__ import annotations

from collections.abc import Callable

import pandapower as pp
import pandas as pd
import pytest

from gridloop.grid_models.feeders import generate_district, generate_feeders
from gridloop.grid_models.networks import BUILTIN_NETWORKS, load_network

# Builders whose net depends on the seed (the Kerber freileitung nets come out the same for seeds 0 and 1).
DRAWS = {"kerber_landnetz_kabel_1", "kerber_landnetz_kabel_2", "hyllie", "turin", "generated_feeders",
         "generated_district"}
# These draw too, by the same pandapower routine as kerber_landnetz_kabel_1/2 (seeded by the same wrapper), but take
# seconds each to build: they are built twice with one seed, not a third time with another.
DRAWS_TOO = {"kerber_dorfnetz", "kerber_vorstadtnetz_kabel_1", "kerber_vorstadtnetz_kabel_2"}

BUILDERS: dict[str, Callable[[int], pp.pandapowerNet]] = {
    name: (lambda seed, name=name: load_network(name, seed=seed)) for name in BUILTIN_NETWORKS
} | {
    "generated_feeders": lambda seed: generate_feeders(3, 8, seed=seed, phase_skew=0.3),
    "generated_district": lambda seed: generate_district(3, 2, 4, seed=seed),
}


def _tables(net: pp.pandapowerNet) -> dict[str, pd.DataFrame]:
    return {key: value for key, value in net.items() if isinstance(value, pd.DataFrame)}


def _differences(a: pp.pandapowerNet, b: pp.pandapowerNet) -> list[str]:
    """Names of the tables (and scalar fields) that are not exactly equal, values, index, columns and dtypes."""
    ta, tb = _tables(a), _tables(b)
    differ = sorted(set(ta) ^ set(tb))
    differ += [key for key in sorted(set(ta) & set(tb)) if not ta[key].equals(tb[key])
               or list(ta[key].columns) != list(tb[key].columns) or not ta[key].index.equals(tb[key].index)]
    differ += [key for key in ("name", "f_hz", "sn_mva") if a.get(key) != b.get(key)]
    return differ


def test_every_named_network_is_covered() -> None:
    assert (DRAWS | DRAWS_TOO) - set(BUILDERS) == set()
    assert {"hyllie", "turin", "kerber_dorfnetz", "cigre_lv"} <= set(BUILDERS)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_same_seed_same_tables_other_seed_differs(name: str, get_net) -> None:
    """Seed 0 twice (the first from the session's shared cache where it is a named network), then seed 1."""
    build = BUILDERS[name]
    first = get_net(name) if name in BUILTIN_NETWORKS else build(0)
    assert sum(len(t) for t in _tables(first).values()) > 0
    assert _differences(first, build(0)) == []
    if name in DRAWS:
        assert _differences(first, build(1)) != [], f"{name} ignores its seed"
