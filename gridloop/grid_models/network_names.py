"""Which network names a scenario may give, checked without loading pandapower or SimBench.

``gridloop validate`` checks ``grid.network`` with :func:`network_name_problem`; importing pandapower and
simbench would take seconds, so the SimBench codes are spelled out here by SimBench's own grammar
(``simbench.collect_all_simbench_codes``, version 1) and a test holds this list equal to SimBench's.
``load_network`` itself asks SimBench.
"""

from __future__ import annotations

import difflib
from functools import cache

# Built-in networks by short name (networks.BUILTIN_NETWORKS holds their builders; a test keeps both equal).
BUILTIN_NAMES: tuple[str, ...] = (
    "kerber_landnetz_kabel_1", "kerber_landnetz_kabel_2", "kerber_landnetz_freileitung_1",
    "kerber_landnetz_freileitung_2", "kerber_dorfnetz", "kerber_vorstadtnetz_kabel_1",
    "kerber_vorstadtnetz_kabel_2", "cigre_lv", "cigre_mv", "cigre_mv_pv_wind", "mv_oberrhein",
    "simple_mv_open_ring_net", "example_simple", "hyllie", "turin",
)

# SimBench version 1: grid types per voltage level, and the LV grids an MV (HV, EHV) grid may be cut with.
_TYPES = {"EHV": ("mixed",), "HV": ("mixed", "urban"), "MV": ("rural", "semiurb", "urban", "comm"),
          "LV": ("rural1", "rural2", "rural3", "semiurb4", "semiurb5", "urban6")}
_LV_GRIDS = {
    "EHV": {"mixed": ("all", "1", "2")},
    "HV": {"mixed": ("all", "1.105", "2.102", "4.101"), "urban": ("all", "2.203", "3.201", "4.201")},
    "MV": {"rural": ("all", "1.108", "2.107", "4.101"), "semiurb": ("all", "3.202", "4.201", "5.220"),
           "urban": ("all", "5.303", "6.305", "6.309"), "comm": ("all", "3.403", "4.416", "5.401")},
}
_LOWER = {"EHV": "HV", "HV": "MV", "MV": "LV"}

SIMBENCH_GRAMMAR = ("<version 1>-<level: LV | MV | HV | EHV, or coupled: MVLV | HVMV | EHVHV>-<type>-"
                    "<LV grids: empty for one level, 'all' or a grid like 5.303 for two>-<scenario 0|1|2>-<sw|no_sw>")
SIMBENCH_EXAMPLES = ("1-LV-rural1--0-sw", "1-MV-rural--0-sw", "1-MVLV-rural-all-0-sw", "1-MVLV-urban-5.303-1-no_sw")


@cache
def simbench_codes() -> frozenset[str]:
    """Every code ``simbench.get_simbench_net`` accepts (the list ``simbench.collect_all_simbench_codes()`` gives)."""
    tail = [f"-{scenario}-{switches}" for scenario in "012" for switches in ("sw", "no_sw")]
    codes = [f"1-complete_data-mixed-all-{scenario}-sw" for scenario in "012"]
    codes += [f"1-EHVHVMVLV-mixed-all-{scenario}-sw" for scenario in "012"]
    for hv, types in _TYPES.items():
        for kind in types:
            codes += [f"1-{hv}-{kind}-{t}" for t in tail]
            if hv in _LOWER:
                codes += [f"1-{hv}{_LOWER[hv]}-{kind}-{grid}{t}" for grid in _LV_GRIDS[hv][kind] for t in tail]
    return frozenset(codes)


# Networks generated from the grid section's own fields (district.py, feeders.py), not loaded by name.
GENERATED_NAMES: tuple[str, ...] = ("district", "feeders")


def is_known_network(name: str) -> bool:
    key = name.strip()
    return key in simbench_codes() or key.lower().removeprefix("create_") in BUILTIN_NAMES + GENERATED_NAMES


def lv_grid_codes() -> list[str]:
    """The SimBench LV grids a district may be built of (one voltage level, ``1-LV-...``)."""
    return sorted(c for c in simbench_codes() if c.startswith("1-LV-"))


def lv_type_problem(code: str) -> str | None:
    """None for a SimBench LV grid code; else why not, with the closest LV code and the valid ones."""
    if code.strip() in lv_grid_codes():
        return None
    close = difflib.get_close_matches(code.strip(), lv_grid_codes(), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (f"{code!r} is not a SimBench LV grid; {hint}valid: 1-LV-<type>--<scenario 0|1|2>-<sw|no_sw> with type "
            f"one of {', '.join(_TYPES['LV'])}, e.g. 1-LV-rural3--0-sw, 1-LV-semiurb5--0-sw, 1-LV-urban6--0-sw")


def network_name_problem(name: str) -> str | None:
    """None for a name ``load_network`` knows; else why not, with the valid kinds and the closest valid name."""
    if is_known_network(name):
        return None
    key = name.strip()
    close = difflib.get_close_matches(key, sorted(simbench_codes()) + list(BUILTIN_NAMES), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (f"unknown network {name!r}; {hint}valid kinds: a SimBench code ({SIMBENCH_GRAMMAR}; e.g. "
            f"{', '.join(SIMBENCH_EXAMPLES)}; simbench.collect_all_simbench_codes() lists all "
            f"{len(simbench_codes())}) or a built-in network: {', '.join(BUILTIN_NAMES)}; "
            f"or one generated from the grid section: {', '.join(GENERATED_NAMES)}")
