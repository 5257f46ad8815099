"""A built network kept on disk as its tables, so a run on power-grid-model reads it back without pandapower.

Importing pandapower takes about 2 s (it loads matplotlib, scipy.stats, networkx, ...), twice the quick
start's whole step loop. A balanced power-grid-model run only reads the net's tables (pandas DataFrames):
the PGM input, the demand, the meters, the live view and the actuators are all built from them. So the engine
keeps each network it builds as those tables in the user's cache directory and the next run of the same
network reads them back as :class:`NetTables`, importing nothing of pandapower. Two things a run needs are
computed with pandapower's graph tools, so they are computed when the file is written and stored beside the
tables, valid for the switching state they were computed in: the radial asset tree provisioning registers
and each bus's loop impedance (1 Hz meters within a step). Anything else that needs a real pandapower net
gets one from :func:`as_pandapower` (made from the same tables; pandapower is imported then).

A file is keyed by the network's name, the builder's options (district, feeders), the seed (not for SimBench
codes: they draw nothing), gridloop's version, a hash of the builder's sources and the versions of the
packages that build or read it. It is written atomically (a temporary file, then a rename) with a SHA-256 of
its content, and read back only if its key and checksum match and it names only the numpy and pandas classes
and reconstructors a table file holds, by exact name, and plain Python types; otherwise it is rebuilt. The cache
directory must still be trusted like any user cache: the SimBench nets beside it are pickles that pandapower reads
whole. ``GRIDLOOP_NET_CACHE=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import sys
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import numpy as np

import gridloop
from gridloop.grid_models.network_names import BUILTIN_NAMES, simbench_codes

log = logging.getLogger(__name__)

FORMAT = 1
MAGIC = b"gridloop-net-cache\n"
RADIAL_TREE, BUS_IMPEDANCE = "radial_tree", "bus_impedance"
REQUIRED_TABLES = ("bus", "load", "sgen", "line", "trafo", "switch", "ext_grid")
# the modules whose code decides what a built net holds (read as text: importing them would import pandapower)
BUILDER_SOURCES = ("networks.py", "pilots.py", "district.py", "feeders.py", "zero_sequence.py", "topology.py",
                   "loop_impedance.py", "net_cache.py")
PACKAGES = ("pandapower", "simbench", "pandas", "numpy", "networkx")
# Exactly the globals a table file names (numpy's arrays, pandas' frames, indexes and nullable arrays, the
# functions they are rebuilt with; numpy 1.x's module names too): any other name, a dotted one (which pickle would
# follow into an imported module, e.g. numpy.f2py's subprocess) or a class with side effects such as
# numpy.memmap, makes the file unusable and it is rebuilt.
_NUMPY = [(f"numpy.{core}.{mod}", name) for core in ("_core", "core")
          for mod, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))]
_PANDAS = [("pandas.core.frame", "DataFrame"), ("pandas.core.series", "Series"),
           ("pandas.core.internals.managers", "BlockManager"), ("pandas.core.internals.managers", "SingleBlockManager"),
           ("pandas._libs.internals", "_unpickle_block"), ("pandas.core.indexes.base", "Index"),
           ("pandas.core.indexes.base", "_new_Index"), ("pandas.core.indexes.range", "RangeIndex"),
           *((f"pandas.core.arrays.{mod}", name) for mod, names in (
               ("integer", ("Int64Dtype", "Int32Dtype", "Int16Dtype", "Int8Dtype", "UInt64Dtype", "UInt32Dtype",
                            "UInt16Dtype", "UInt8Dtype", "IntegerArray")),
               ("floating", ("Float64Dtype", "Float32Dtype", "FloatingArray")),
               ("boolean", ("BooleanDtype", "BooleanArray")), ("string_", ("StringDtype", "StringArray")),
               ("categorical", ("Categorical",))) for name in names),
           ("pandas.core.dtypes.dtypes", "CategoricalDtype")]
_TABLE_GLOBALS = frozenset([("numpy", "dtype"), ("numpy", "ndarray"), *_NUMPY, *_PANDAS,
                            ("copyreg", "_reconstructor"), ("_codecs", "encode")])
_SAFE_BUILTINS = {"slice", "set", "frozenset", "complex", "bytearray", "range", "list", "dict", "tuple", "int",
                  "float", "str", "bytes", "bool", "object"}


def cache_root() -> Path:
    """gridloop's cache directory: ``$GRIDLOOP_CACHE``, else ``$XDG_CACHE_HOME/gridloop``, else ~/.cache/gridloop."""
    root = os.environ.get("GRIDLOOP_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "gridloop"


def cache_enabled() -> bool:
    """Off with ``GRIDLOOP_NET_CACHE=0`` (or off/false/no): every run builds its network with pandapower."""
    return os.environ.get("GRIDLOOP_NET_CACHE", "1").strip().lower() not in ("0", "off", "false", "no")


class NetTables(dict):
    """A pandapower net's tables and values by key or attribute (``net.bus``, ``net["load"]``) without pandapower,
    with what was derived from it when it was built, valid while its switches are as they were then."""

    def __init__(self, tables: dict, closed: np.ndarray | None = None, derived: dict | None = None) -> None:
        super().__init__(tables)
        self._closed = closed
        self._derived = derived or {}

    def __getattr__(self, name: str) -> object:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def derived(self, name: str) -> object | None:
        """What was computed as ``name`` when the net was built, if its switches are still as they were then."""
        value = self._derived.get(name)
        if value is None or self._closed is None:
            return None
        closed = self["switch"].closed.to_numpy(dtype=bool)
        return value if np.array_equal(closed, self._closed) else None

    def to_pandapower(self) -> object:
        """A pandapower net of the same tables (shared, not copied); imports pandapower."""
        import pandapower as pp

        return pp.pandapowerNet(dict(self))


def as_pandapower(net: object) -> object:
    """``net`` as a pandapower net: a pandapower net as it is, NetTables made into one (imports pandapower)."""
    return net.to_pandapower() if isinstance(net, NetTables) else net


def network_key(grid, seed: int) -> dict:
    """What a built net depends on: the grid section's network and builder options, the seed, the code."""
    name = grid.network.strip()
    options: dict = {}
    if name == "district":
        options = {"substations": grid.substations, "lv_types": list(grid.lv_types), "mv": grid.mv}
    elif name == "feeders":
        options = {"feeders": grid.feeders, "homes_per_feeder": grid.homes_per_feeder, "phase_skew": grid.phase_skew}
    simbench = name in simbench_codes() and name.lower().removeprefix("create_") not in BUILTIN_NAMES
    sources = hashlib.sha256()
    for source in BUILDER_SOURCES:
        sources.update((Path(__file__).parent / source).read_bytes())
    return {"format": FORMAT, "network": name, "options": options, "seed": None if simbench else int(seed),
            "gridloop": gridloop.__version__, "sources": sources.hexdigest()[:16],
            "python": f"{sys.version_info.major}.{sys.version_info.minor}", "packages": _versions()}


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = ""
    return out


def cache_path(key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key["network"])[:60]
    return cache_root() / "nets" / f"{safe}__{digest}.net"


def load_grid_network(grid, seed: int) -> object:
    """The grid section's net: its tables from the cache when a valid file is there (no pandapower), else built
    with pandapower (``networks.grid_network``) and stored for the next run."""
    from_cache = cache_enabled()
    if from_cache:
        key = network_key(grid, seed)
        path = cache_path(key)
        tables = read_tables(path, key)
        if tables is not None:
            return tables
    from gridloop.grid_models.networks import grid_network

    net = grid_network(grid, seed)
    if from_cache:
        write_tables(path, key, net)
    return net


class _TablesUnpickler(pickle.Unpickler):
    """Unpickles pandas, numpy and plain Python values only: a file naming any other class is not used."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _TABLE_GLOBALS or (module == "builtins" and name in _SAFE_BUILTINS):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not a table value")


def _unpickle(body: bytes) -> object:
    return _TablesUnpickler(io.BytesIO(body)).load()


def _derived(net) -> dict:
    """What a run computes with pandapower's graph tools, computed now (left out if it fails on this net)."""
    from gridloop.grid_models.loop_impedance import bus_impedance
    from gridloop.grid_models.topology import radial_tree

    derived: dict = {}
    for name, compute in ((RADIAL_TREE, radial_tree), (BUS_IMPEDANCE, lambda n: asdict(bus_impedance(n)))):
        try:
            derived[name] = compute(net)
        except Exception as exc:  # the run computes it itself when asked, and fails there if it must
            log.debug("network cache: %s not stored: %s", name, exc)
    return derived


def write_tables(path: Path, key: dict, net) -> bool:
    """Store ``net``'s tables and derived values at ``path`` (atomically); False (and a log line) if it cannot."""
    closed = net.switch.closed.to_numpy(dtype=bool).copy()
    payload = {"tables": dict(net), "closed": closed, "derived": _derived(net)}
    try:
        body = pickle.dumps(payload, protocol=5)
        _unpickle(body)  # a net holding other objects (a controller, say) is not cached: it would not read back
    except Exception as exc:
        log.info("network %s not cached: %s", key["network"], exc)
        return False
    header = json.dumps({"key": key, "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}).encode()
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # no fsync: a file a power cut leaves torn fails its checksum when read and is rebuilt
        tmp.write_bytes(MAGIC + header + b"\n" + body)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        log.warning("network cache %s not written: %s", path, exc)
        return False
    _prune(path, key)
    return True


def _prune(path: Path, key: dict) -> None:
    """Remove the files of this network that an older gridloop, builder or package version wrote (they would
    never be read again); files of other seeds or options stay."""
    current = {k: v for k, v in key.items() if k not in ("options", "seed")}
    for other in path.parent.glob(path.name.rsplit("__", 1)[0] + "__*.net"):
        if other == path:
            continue
        try:
            with other.open("rb") as fh:
                head = fh.read(len(MAGIC)) == MAGIC and json.loads(fh.readline())["key"]
            stale = not head or any(head.get(k) != v for k, v in current.items())
        except (OSError, ValueError, KeyError, TypeError):
            stale = True
        if stale:
            other.unlink(missing_ok=True)


def read_tables(path: Path, key: dict) -> NetTables | None:
    """The tables stored at ``path`` if the file is whole and made for ``key``, else None (it is then rebuilt)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        return _parse(data, key)
    except Exception as exc:
        log.warning("network cache %s unusable (%s): rebuilding it", path, exc)
        return None


def _parse(data: bytes, key: dict) -> NetTables:
    if not data.startswith(MAGIC):
        raise ValueError("not a network cache file")
    header_end = data.index(b"\n", len(MAGIC))
    header = json.loads(data[len(MAGIC):header_end])
    body = data[header_end + 1:]
    if header.get("key") != key:
        raise ValueError("made for another network, builder or package version")
    if header.get("bytes") != len(body) or header.get("sha256") != hashlib.sha256(body).hexdigest():
        raise ValueError("checksum mismatch")
    payload = _unpickle(body)
    tables, closed, derived = payload["tables"], payload["closed"], payload["derived"]
    import pandas as pd

    missing = [t for t in REQUIRED_TABLES if not isinstance(tables.get(t), pd.DataFrame)]
    if missing or not isinstance(tables.get("f_hz"), int | float):
        raise ValueError(f"tables missing: {missing or ['f_hz']}")
    if not isinstance(closed, np.ndarray) or closed.shape != (len(tables["switch"]),) or not isinstance(derived, dict):
        raise ValueError("switch state or derived values malformed")
    if BUS_IMPEDANCE in derived:
        arrays = derived[BUS_IMPEDANCE]
        if any(np.asarray(v).shape != (len(tables["bus"]),) for v in arrays.values()):
            raise ValueError("bus impedance malformed")
    return NetTables(tables, closed, derived)
