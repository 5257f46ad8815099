"""A district: a 20 kV feeder with N LV substations, each a copy of one of SimBench's LV grids, seeded.

Every substation is a whole SimBench LV grid (its 20 kV node, MV/LV transformer, cables, loads, PV, switches)
loaded once per code with SimBench's own loader and copied; its names get the prefix ``s001/``, ``s002/``, ...
so buses, loads and meters stay distinct. The element tables are stacked by hand with offset indices (0..n-1
in every table), which keeps indices dense where ``pandapower.merge_nets`` would renumber table by table.

Which LV grid each substation gets: the codes round robin (so their counts differ by at most one), in an order
shuffled from the seed. The MV side: ``ceil(N / per_feeder)`` cables from the root busbar (an ext_grid at
1.02 pu), each a chain of up to ``per_feeder`` substations with seeded section lengths; ``ring`` closes every
chain back to the root with an open switch at the middle section (the normally-open point).
"""

from __future__ import annotations

import copy
import itertools
import math
import warnings

import numpy as np
import pandapower as pp
import pandas as pd

from gridloop.grid_models.feeders import MV_CABLE

# element tables copied from each LV grid, and their columns that name a bus
_BUS_COLUMNS = {"line": ("from_bus", "to_bus"), "trafo": ("hv_bus", "lv_bus"), "load": ("bus",), "sgen": ("bus",),
                "storage": ("bus",), "switch": ("bus",)}


def substation_prefix(index: int) -> str:
    return f"s{index + 1:03d}/"


def lv_type_order(lv_types: list[str], n_substations: int, seed: int) -> list[str]:
    """The LV grid of every substation: round robin over ``lv_types``, in an order shuffled from ``seed``."""
    codes = [lv_types[i % len(lv_types)] for i in range(n_substations)]
    order = np.random.default_rng(np.random.SeedSequence([seed, 1801])).permutation(n_substations)
    return [codes[i] for i in order]


def _shifted(lv: pp.pandapowerNet, kind: str, offsets: dict[str, int], prefix: str) -> pd.DataFrame:
    """``lv[kind]`` re-indexed to offset + position, its bus/line/trafo references likewise, names prefixed."""
    t = lv[kind].copy()
    t.index = pd.RangeIndex(offsets[kind], offsets[kind] + len(t))

    def moved(labels, of: str) -> np.ndarray:
        return lv[of].index.get_indexer(np.asarray(labels)) + offsets[of]

    for col in _BUS_COLUMNS.get(kind, ()):
        t[col] = moved(t[col], "bus")
    if kind == "switch":  # the element is a bus, line or trafo by its et
        element = t["element"].to_numpy()
        for et, of in (("b", "bus"), ("l", "line"), ("t", "trafo")):
            on = (t["et"] == et).to_numpy()
            if on.any():
                element = np.where(on, moved(np.where(on, element, lv[of].index[0]), of), element)
        t["element"] = element.astype(np.int64)
    if "name" in t.columns:
        t["name"] = prefix + t["name"].astype(str)
    return t


def _mv_feeders(net: pp.pandapowerNet, root: int, mv_buses: list[int], ring: bool, per_feeder: int,
                rng: np.random.Generator, length_km: tuple[float, float]) -> None:
    """Chains of substations from the root busbar; ``ring`` closes each back to the root, open in the middle."""
    for f in range(math.ceil(len(mv_buses) / per_feeder)):
        chain = [root, *mv_buses[f * per_feeder:(f + 1) * per_feeder]] + ([root] if ring else [])
        sections = list(itertools.pairwise(chain))
        lengths = rng.uniform(*length_km, size=len(sections))
        lines = pp.create_lines(net, [a for a, _ in sections], [b for _, b in sections], lengths, std_type=MV_CABLE,
                                name=[f"MV feeder {f + 1} section {k + 1}" for k in range(len(sections))])
        if ring:  # the normally-open point: an open switch at the middle section
            mid = len(sections) // 2
            pp.create_switch(net, sections[mid][1], lines[mid], et="l", closed=False,
                             name=f"MV feeder {f + 1} NOP")


def build_simbench_district(n_substations: int, lv_types: list[str], *, mv: str = "radial", seed: int = 0,
                            per_feeder: int = 10, mv_length_km: tuple[float, float] = (0.3, 1.0),
                            load_lv=None) -> pp.pandapowerNet:
    """The district as one pandapower net; ``load_lv(code)`` loads a SimBench LV grid (default: load_network)."""
    if mv not in ("radial", "ring"):
        raise ValueError(f"mv must be 'radial' or 'ring', not {mv!r}")
    if not lv_types:
        raise ValueError("a district needs at least one LV grid type (lv_types)")
    if load_lv is None:
        from gridloop.grid_models.networks import load_network as load_lv
    grids = {code: load_lv(code) for code in dict.fromkeys(lv_types)}  # each code loaded once per build
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1802]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = pp.create_empty_network(name=f"district-{n_substations}-{mv}-s{seed}", f_hz=50.0)
        parts: dict[str, list[pd.DataFrame]] = {kind: [] for kind in ("bus", *_BUS_COLUMNS)}
        offsets = dict.fromkeys(parts, 0)
        mv_buses: list[int] = []
        for i, code in enumerate(lv_type_order(lv_types, n_substations, seed)):
            lv = grids[code]
            # the LV grid's 20 kV node (its ext_grid's bus) becomes the substation's node on the MV feeder
            mv_buses.append(int(lv.bus.index.get_loc(lv.ext_grid.bus.iloc[0])) + offsets["bus"])
            for kind in parts:
                parts[kind].append(_shifted(lv, kind, offsets, substation_prefix(i)))
            for kind in parts:
                offsets[kind] += len(lv[kind])
            for kind, types in lv.std_types.items():
                net.std_types[kind].update(copy.deepcopy(types))
        for kind, frames in parts.items():
            net[kind] = pd.concat([net[kind], *frames])
        root = pp.create_bus(net, vn_kv=20.0, name="MV root")
        pp.create_ext_grid(net, root, vm_pu=1.02)
        _mv_feeders(net, root, mv_buses, mv == "ring", per_feeder, rng, mv_length_km)
        net.profiles = _merged_profiles(grids.values())
    return net


def _merged_profiles(grids) -> dict[str, pd.DataFrame]:
    """SimBench's profiles of every LV type, one column per profile (they share the 15-min time axis)."""
    merged: dict[str, pd.DataFrame] = {}
    for lv in grids:
        for kind, frame in getattr(lv, "profiles", {}).items():
            have = merged.get(kind)
            merged[kind] = frame if have is None else pd.concat(
                [have, frame[[c for c in frame.columns if c not in have.columns]]], axis=1)
    return merged
