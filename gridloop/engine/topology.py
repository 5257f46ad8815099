"""The grid as a radial tree from its transformers, as provisioned into the registry's location assets."""

from __future__ import annotations

from collections import deque

import pandapower.topology as top


def radial_tree(net) -> dict[int, tuple[int, int]]:
    """bus -> (parent bus, line feeding it), breadth-first from the supply (-1 at roots).

    Follows the normal switching state; buses reached through a transformer or a bus-bus switch get line -1.
    """
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


