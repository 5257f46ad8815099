"""Resolve a network name (SimBench code or pandapower built-in) to a pandapower net."""

from __future__ import annotations

import os
import pickle
import random
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn

from gridloop.grid_models.pilots import build_hyllie, build_turin

# Built-in pandapower networks that need no arguments, by short name.
BUILTIN_NETWORKS: dict[str, Callable[[], pp.pandapowerNet]] = {
    "kerber_landnetz_kabel_1": pn.create_kerber_landnetz_kabel_1,
    "kerber_landnetz_kabel_2": pn.create_kerber_landnetz_kabel_2,
    "kerber_landnetz_freileitung_1": pn.create_kerber_landnetz_freileitung_1,
    "kerber_landnetz_freileitung_2": pn.create_kerber_landnetz_freileitung_2,
    "kerber_dorfnetz": pn.create_kerber_dorfnetz,
    "kerber_vorstadtnetz_kabel_1": pn.create_kerber_vorstadtnetz_kabel_1,
    "kerber_vorstadtnetz_kabel_2": pn.create_kerber_vorstadtnetz_kabel_2,
    "cigre_lv": pn.create_cigre_network_lv,
    "cigre_mv": lambda: pn.create_cigre_network_mv(with_der=False),
    "cigre_mv_pv_wind": lambda: pn.create_cigre_network_mv(with_der="pv_wind"),
    "mv_oberrhein": pn.mv_oberrhein,
    "simple_mv_open_ring_net": pn.simple_mv_open_ring_net,
    "example_simple": pn.example_simple,
    "hyllie": build_hyllie,  # FLEXMETER pilot-like grids (pilots.py)
    "turin": build_turin,
}

_SIMBENCH_CODE = re.compile(r"^\d-(EHV|HV|MV|LV|EHVHV|HVMV|MVLV)-[A-Za-z0-9]+--[0-2]-(sw|no_sw)$")


def cache_dir() -> Path:
    """Where converted SimBench nets are pickled (``$GRIDLOOP_CACHE`` or ~/.cache/gridloop)."""
    root = os.environ.get("GRIDLOOP_CACHE") or Path.home() / ".cache" / "gridloop"
    return Path(root) / "simbench"


def is_simbench_code(name: str) -> bool:
    """True if ``name`` looks like a SimBench code such as ``1-LV-rural1--0-sw``."""
    return bool(_SIMBENCH_CODE.match(name))


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

    Builders that draw with Python's ``random`` (the Kerber nets' cable types) draw from ``seed``, so a name and
    a seed always give the same net; the caller's ``random`` state is left as it was.
    Transformers without a vector group get ``Dyn``.  Raises ValueError for an unknown name.
    """
    key = name.strip()
    if is_simbench_code(key):
        net = _load_simbench(key, use_cache)
    else:
        short = key.lower().removeprefix("create_")
        if short not in BUILTIN_NETWORKS:
            raise ValueError(
                f"unknown network {name!r}; valid kinds: a SimBench code like '1-LV-rural1--0-sw' "
                f"(pattern <1|2|...>-<LV|MV|HV|...>-<grid>--<0|1|2>-<sw|no_sw>) or one of "
                f"{sorted(BUILTIN_NETWORKS)}"
            )
        state = random.getstate()
        random.seed(seed)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                net = BUILTIN_NETWORKS[short]()
        finally:
            random.setstate(state)
    set_default_vector_group(net)
    return net


def network_summary(net: pp.pandapowerNet) -> dict[str, int]:
    """Element counts, handy for logs and benchmark output."""
    return {t: int(len(net[t])) for t in ("bus", "line", "trafo", "load", "sgen", "switch")} | {
        "n_lv_bus": int(np.sum(net.bus.vn_kv.to_numpy() < 1.0))
    }
