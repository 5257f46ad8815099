"""The network cache: a net read back from it gives the grid a fresh build gives, and a bad file is rebuilt."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridloop.engine.substation_unit import build_unit
from gridloop.grid_models import net_cache
from gridloop.grid_models.loop_impedance import bus_impedance
from gridloop.grid_models.net_cache import NetTables, cache_path, load_grid_network, network_key, read_tables
from gridloop.grid_models.networks import cache_dir
from gridloop.grid_models.topology import radial_tree
from gridloop.scenario import load_scenario
from gridloop.stage import Clock, Outputs

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
SWITCH_AT = 5  # the quick start's feeder switch opens at this step of the test (its own event is at 12 h)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty network cache of the test's own, beside the machine's SimBench pickles (converted once)."""
    (tmp_path / "simbench").symlink_to(cache_dir(), target_is_directory=True)
    monkeypatch.setenv("GRIDLOOP_CACHE", str(tmp_path))
    monkeypatch.delenv("GRIDLOOP_NET_CACHE", raising=False)
    return tmp_path


def _steps(unit, n: int) -> list:
    """n one-minute steps of the unit's grid, the first switch opened at SWITCH_AT; each step's state."""
    grid, states = unit.grid, []
    for k in range(n):
        if k == SWITCH_AT:
            grid.set_switch(int(grid.net.switch.index[0]), False)
        states.append(grid.step(Clock(k * 60_000, 60_000), Outputs()).state)
    return states


def _same_state(a, b) -> None:
    for field in ("bus_vm_pu", "bus_energized", "line_loading_percent", "trafo_loading_percent", "load_p_mw",
                  "trafo_p_mw", "trafo_q_mvar"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_a_cached_net_gives_the_grid_and_results_of_a_fresh_build(cache, monkeypatch):
    s = load_scenario(QUICKSTART)
    monkeypatch.setenv("GRIDLOOP_NET_CACHE", "0")
    fresh = build_unit(s, 0)
    monkeypatch.setenv("GRIDLOOP_NET_CACHE", "1")
    cold = build_unit(s, 0)  # builds with pandapower and writes the file
    warm = build_unit(s, 0)  # reads the file: tables only
    assert not isinstance(cold.grid.net, NetTables) and isinstance(warm.grid.net, NetTables)
    assert len(list((cache / "nets").glob("*.net"))) == 1
    for key, value in fresh.grid.net.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(warm.grid.net[key], value, check_exact=True, obj=key)
    for unit in (cold, warm):
        g, f = unit.grid, fresh.grid
        assert (g.bus_names, g.line_names, g.trafo_names) == (f.bus_names, f.line_names, f.trafo_names)
        np.testing.assert_array_equal(g.household_bus, f.household_bus)
        assert unit.meters.ids == fresh.meters.ids
        for component, data in f.solver._input.items():  # power-grid-model's input, attribute by attribute
            for name in data.dtype.names:
                np.testing.assert_array_equal(g.solver._input[component][name], data[name], err_msg=name)
    # what provisioning and the 1 Hz meters compute with pandapower's graph tools, stored beside the tables
    assert radial_tree(warm.grid.net) == radial_tree(fresh.grid.net)
    got, want = bus_impedance(warm.grid.net), bus_impedance(fresh.grid.net)
    for field in ("trafo", "line_r", "line_x", "trafo_r", "trafo_x"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field))
    for a, b, c in zip(_steps(fresh, 8), _steps(cold, 8), _steps(warm, 8), strict=True):
        _same_state(a, b)
        _same_state(a, c)
    # once a switch moved, the stored tree no longer holds: it is computed anew (pandapower) from the tables
    assert warm.grid.net.derived(net_cache.RADIAL_TREE) is None
    assert radial_tree(warm.grid.net) == radial_tree(fresh.grid.net)


def _stored(cache: Path) -> tuple[Path, dict]:
    s = load_scenario(QUICKSTART)
    key = network_key(s.grid, s.seed)
    path = cache_path(key)
    assert path.parent == cache / "nets"
    load_grid_network(s.grid, s.seed)
    assert isinstance(read_tables(path, key), NetTables)
    return path, key


def _rewrite(path: Path, header: dict, body: bytes) -> None:
    path.write_bytes(net_cache.MAGIC + json.dumps(header).encode() + b"\n" + body)


def test_a_corrupt_or_foreign_cache_file_is_rebuilt_not_trusted(cache):
    path, key = _stored(cache)
    data = path.read_bytes()
    header_end = data.index(b"\n", len(net_cache.MAGIC))
    header, body = json.loads(data[len(net_cache.MAGIC):header_end]), data[header_end + 1:]
    flipped = bytearray(body)
    flipped[len(body) // 2] ^= 0x01
    payload = net_cache._unpickle(body)
    payload["tables"]["extra"] = Fraction(1, 3)  # whole and checksummed, but naming a class outside the tables'
    foreign = pickle.dumps(payload)
    payload["tables"]["extra"] = pd.read_pickle  # a pandas function: unpickled, a call of it could be made
    calling = pickle.dumps(payload)
    bad = {
        "flipped bit": lambda: _rewrite(path, header, bytes(flipped)),
        "truncated": lambda: path.write_bytes(data[: len(data) // 3]),
        "other key": lambda: _rewrite(path, {**header, "key": {**key, "seed": 1}}, body),
        "foreign class": lambda: _rewrite(path, {**header, "sha256": hashlib.sha256(foreign).hexdigest(),
                                                 "bytes": len(foreign)}, foreign),
        "pandas function": lambda: _rewrite(path, {**header, "sha256": hashlib.sha256(calling).hexdigest(),
                                                   "bytes": len(calling)}, calling),
    }
    older = path.with_name(path.name.rsplit("__", 1)[0] + "__older.net")  # an older gridloop's file of this net
    _rewrite(older, {**header, "key": {**key, "sources": "0" * 16}}, body)
    other_seed = path.with_name(path.name.rsplit("__", 1)[0] + "__seed7.net")
    _rewrite(other_seed, {**header, "key": {**key, "seed": 7}}, body)
    s = load_scenario(QUICKSTART)
    for what, spoil in bad.items():
        spoil()
        assert read_tables(path, key) is None, what
        net = load_grid_network(s.grid, s.seed)
        assert not isinstance(net, NetTables), what  # built anew with pandapower ...
        assert isinstance(read_tables(path, key), NetTables), what  # ... and the file written again, whole
    assert path.read_bytes() == data
    assert not older.exists() and other_seed.exists()  # a rewrite prunes what no run reads again, only that


def _global(module: str, name: str) -> bytes:
    """Pickle opcodes naming ``module``.``name`` (STACK_GLOBAL: a dotted name is followed attribute by attribute)."""
    return b"".join(b"\x8c" + bytes([len(s)]) + s for s in (module.encode(), name.encode())) + b"\x93"


def _text(s: str) -> bytes:
    return b"\x8c" + bytes([len(s.encode())]) + s.encode()


@pytest.mark.parametrize("crafted", ["dotted name", "numpy.memmap"])
def test_a_crafted_cache_file_has_no_side_effect(cache, crafted):
    """A checksummed file naming a global that has side effects is refused before it runs: not through a dotted
    name that leads out of numpy (numpy.f2py imports subprocess), not numpy's own file-mapping class."""
    path, key = _stored(cache)
    data = path.read_bytes()
    header = json.loads(data[len(net_cache.MAGIC):data.index(b"\n", len(net_cache.MAGIC))])
    made = cache / "made-by-the-file"
    if crafted == "dotted name":  # subprocess.Popen(["touch", made])
        call = _global("numpy.f2py", "subprocess.Popen") + b"]" + _text("touch") + b"a" + _text(str(made)) + b"a" \
            + b"\x85R"
    else:  # numpy.memmap(made, "u1", "w+", 0, (1,))
        call = _global("numpy", "memmap") + b"(" + _text(str(made)) + _text("u1") + _text("w+") + b"K\x00K\x01\x85tR"
    body = b"\x80\x04" + call + b"."
    _rewrite(path, {**header, "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}, body)
    assert read_tables(path, key) is None
    assert not made.exists()


def test_a_warm_quick_start_build_imports_no_pandapower(cache):
    _stored(cache)
    code = ("import sys\nfrom gridloop.engine.run import run_scenario\nfrom gridloop.engine.substation_unit import "
            "build_unit\nfrom gridloop.scenario import load_scenario\n"
            f"u = build_unit(load_scenario({str(QUICKSTART)!r}), 0)\n"
            "print(type(u.grid.net).__name__, sorted(m for m in ('pandapower', 'simbench', 'matplotlib', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "NetTables []", out.stdout + out.stderr
