"""Resolve a network name (SimBench code or pandapower built-in) to a pandapower net."""

from __future__ import annotations

import os
import pickle
import random
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn

from gridloop.grid_models.net_cache import cache_root
from gridloop.grid_models.network_names import GENERATED_NAMES, network_name_problem
from gridloop.grid_models.pilots import build_hyllie, build_turin


def _seeded(build: Callable[[], pp.pandapowerNet]) -> Callable[[int], pp.pandapowerNet]:
    """A pandapower builder run with Python's ``random`` seeded (the Kerber nets draw their cable types with it);
    the caller's ``random`` state is left as it was."""

    def _build(seed: int) -> pp.pandapowerNet:
        state = random.getstate()
        random.seed(seed)
        try:
            return build()
        finally:
            random.setstate(state)

    return _build


# Built-in networks by short name; each builder takes the scenario's seed (names: network_names.BUILTIN_NAMES).
BUILTIN_NETWORKS: dict[str, Callable[[int], pp.pandapowerNet]] = {
    "kerber_landnetz_kabel_1": _seeded(pn.create_kerber_landnetz_kabel_1),
    "kerber_landnetz_kabel_2": _seeded(pn.create_kerber_landnetz_kabel_2),
    "kerber_landnetz_freileitung_1": _seeded(pn.create_kerber_landnetz_freileitung_1),
    "kerber_landnetz_freileitung_2": _seeded(pn.create_kerber_landnetz_freileitung_2),
    "kerber_dorfnetz": _seeded(pn.create_kerber_dorfnetz),
    "kerber_vorstadtnetz_kabel_1": _seeded(pn.create_kerber_vorstadtnetz_kabel_1),
    "kerber_vorstadtnetz_kabel_2": _seeded(pn.create_kerber_vorstadtnetz_kabel_2),
    "cigre_lv": _seeded(pn.create_cigre_network_lv),
    "cigre_mv": _seeded(lambda: pn.create_cigre_network_mv(with_der=False)),
    "cigre_mv_pv_wind": _seeded(lambda: pn.create_cigre_network_mv(with_der="pv_wind")),
    "mv_oberrhein": _seeded(pn.mv_oberrhein),
    "simple_mv_open_ring_net": _seeded(pn.simple_mv_open_ring_net),
    "example_simple": _seeded(pn.example_simple),
    "hyllie": lambda seed: build_hyllie(seed),  # FLEXMETER pilot-like grids (pilots.py), drawn with numpy from seed
    "turin": lambda seed: build_turin(seed),
}


def cache_dir() -> Path:
    """Where converted SimBench nets are pickled: ``simbench`` in gridloop's cache (``net_cache.cache_root``)."""
    return cache_root() / "simbench"


def is_simbench_code(name: str) -> bool:
    """True if SimBench knows ``name`` (``1-LV-rural1--0-sw``, ``1-MVLV-urban-5.303-1-no_sw``, ...): its own list."""
    import simbench as sb

    return name.strip() in sb.collect_all_simbench_codes()


def set_default_vector_group(net: pp.pandapowerNet, default: str = "Dyn") -> None:
    """Give transformers without a vector group ``default`` (needed for per-phase and PGM conversion)."""
    if net.trafo.empty:
        return
    if "vector_group" not in net.trafo.columns:
        net.trafo["vector_group"] = default
        return
    vg = net.trafo["vector_group"]
    missing = vg.isna() | (vg.astype(str).str.strip().isin(["", "None", "nan"]))
    net.trafo.loc[missing, "vector_group"] = default


def _load_simbench(code: str, use_cache: bool) -> pp.pandapowerNet:
    import simbench as sb

    path = cache_dir() / f"{code}__simbench-{sb.__version__}__pp-{pp.__version__}.pkl"
    if use_cache and path.exists():
        try:
            with path.open("rb") as fh:
                return pickle.load(fh)
        except Exception:  # corrupt or incompatible cache: rebuild below
            path.unlink(missing_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = sb.get_simbench_net(code)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("wb") as fh:
            pickle.dump(net, fh, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    return net


def load_network(name: str, *, use_cache: bool = True, seed: int = 0) -> pp.pandapowerNet:
    """Return a fresh pandapower net for a SimBench code or a built-in name (see BUILTIN_NETWORKS).

    Every builder draws from ``seed`` (SimBench nets draw nothing), so a name and a seed always give the same net.
    Transformers without a vector group get ``Dyn``.  Raises ValueError for an unknown name, naming the valid
    kinds and the closest valid name.
    """
    key = name.strip()
    short = key.lower().removeprefix("create_")
    if short in BUILTIN_NETWORKS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = BUILTIN_NETWORKS[short](seed)
    elif short in GENERATED_NAMES:
        raise ValueError(f"network {key!r} is generated from a scenario's grid section: use grid_network(grid, seed)")
    elif is_simbench_code(key):
        net = _load_simbench(key, use_cache)
    else:
        raise ValueError(network_name_problem(name) or f"unknown network {name!r}")
    set_default_vector_group(net)
    return net


def grid_network(grid, seed: int) -> pp.pandapowerNet:
    """The net of a scenario's grid section: a district or synthetic feeders built from its fields, else by name."""
    name = grid.network.strip()
    if name == "district":
        from gridloop.grid_models.district import build_simbench_district

        return build_simbench_district(grid.substations, list(grid.lv_types), mv=grid.mv, seed=seed,
                                       load_lv=load_network)
    if name == "feeders":
        from gridloop.grid_models.feeders import generate_feeders

        return generate_feeders(grid.feeders, grid.homes_per_feeder, seed=seed, phase_skew=grid.phase_skew)
    return load_network(name, seed=seed)


def network_summary(net: pp.pandapowerNet) -> dict[str, int]:
    """Element counts, handy for logs and benchmark output."""
    return {t: int(len(net[t])) for t in ("bus", "line", "trafo", "load", "sgen", "switch")} | {
        "n_lv_bus": int(np.sum(net.bus.vn_kv.to_numpy() < 1.0))
    }
