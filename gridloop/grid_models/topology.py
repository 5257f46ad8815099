"""The grid's topology: switches folded into per-branch-end statuses (vectorised, for the PGM solver), and
the radial tree from the supply that provisioning registers as location assets."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gridloop.grid_models.net_cache import RADIAL_TREE, NetTables

if TYPE_CHECKING:
    import pandapower as pp


@dataclass(frozen=True)
class SwitchMap:
    """Where each pandapower switch acts: on a line end, a transformer end, or a bus-bus link."""

    labels: np.ndarray  # net.switch index labels, position-aligned with the arrays below
    kind: np.ndarray  # 0 line, 1 trafo, 2 bus-bus, -1 unsupported / ignored
    element_pos: np.ndarray  # position in net.line / net.trafo, or link position for bus-bus
    side: np.ndarray  # 0 from/hv end, 1 to/lv end (branch switches)

    def position(self, label: int) -> int:
        """Position of a switch label; KeyError if absent."""
        pos = np.flatnonzero(self.labels == label)
        if pos.size == 0:
            raise KeyError(f"no switch with index {label}")
        return int(pos[0])


def build_switch_map(net: pp.pandapowerNet) -> SwitchMap:
    """Classify every switch of ``net`` once."""
    sw = net.switch
    n = len(sw)
    kind = np.full(n, -1, dtype=np.int64)
    element_pos = np.zeros(n, dtype=np.int64)
    side = np.zeros(n, dtype=np.int64)
    if n == 0:
        return SwitchMap(sw.index.to_numpy(), kind, element_pos, side)
    et = sw.et.to_numpy().astype(str)
    element = sw.element.to_numpy().astype(np.int64)
    bus = sw.bus.to_numpy().astype(np.int64)
    for code, name, from_col, k in (("l", "line", "from_bus", 0), ("t", "trafo", "hv_bus", 1)):
        table = net[name]
        mask = et == code
        if mask.any():
            pos = table.index.get_indexer(element[mask])
            if (pos < 0).any():
                raise ValueError(f"a switch refers to a missing {name}")
            kind[mask] = k
            element_pos[mask] = pos
            side[mask] = (table[from_col].to_numpy()[pos] != bus[mask]).astype(np.int64)
    bb = et == "b"
    kind[bb] = 2
    element_pos[bb] = np.arange(int(bb.sum()))
    return SwitchMap(sw.index.to_numpy(), kind, element_pos, side)


def branch_end_status(
    smap: SwitchMap, closed: np.ndarray, kind: int, in_service: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """from/to status per branch of ``kind`` (0 line, 1 trafo): in service and no open switch at that end."""
    n = in_service.shape[0]
    open_here = (~closed) & (smap.kind == kind)
    open_from = np.bincount(smap.element_pos[open_here & (smap.side == 0)], minlength=n)[:n]
    open_to = np.bincount(smap.element_pos[open_here & (smap.side == 1)], minlength=n)[:n]
    return (in_service & (open_from == 0)).astype(np.int8), (in_service & (open_to == 0)).astype(np.int8)


def radial_tree(net) -> dict[int, tuple[int, int]]:
    """bus -> (parent bus, line feeding it), breadth-first from the supply (-1 at roots).

    Follows the normal switching state; buses reached through a transformer or a bus-bus switch get line -1.
    A net read from the network cache gives the tree computed when it was built (if its switches are unchanged).
    """
    if isinstance(net, NetTables):
        stored = net.derived(RADIAL_TREE)
        if stored is not None:
            return dict(stored)
        net = net.to_pandapower()
    import pandapower.topology as top

    graph = top.create_nxgraph(net, respect_switches=True, include_trafos=True, multi=True)
    tree: dict[int, tuple[int, int]] = {}
    queue: deque[int] = deque()
    for root in net.ext_grid.bus.tolist():
        if root not in tree:
            tree[int(root)] = (-1, -1)
            queue.append(int(root))
    while queue:
        bus = queue.popleft()
        for _, nxt, key in sorted(graph.edges(bus, keys=True), key=lambda e: (e[1], str(e[2]))):
            if nxt in tree:
                continue
            kind, idx = key if isinstance(key, tuple) else ("", -1)
            tree[int(nxt)] = (bus, int(idx) if kind == "line" else -1)
            queue.append(int(nxt))
    return tree
