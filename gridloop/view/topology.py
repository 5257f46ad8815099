"""The grid as the page draws it: bus positions (the net's geodata, else a radial layout), branches, meters per bus."""

from __future__ import annotations

import json
import math
from collections import defaultdict, deque

import msgspec
import numpy as np


class BusDrawing(msgspec.Struct):
    name: str
    x: float  # 0..1000, the page's SVG coordinates
    y: float
    vn_kv: float


class BranchDrawing(msgspec.Struct):
    name: str
    a: int  # bus positions (net.bus order)
    b: int
    kind: str  # "line" or "trafo": the page colours lines by loading; trafos by their own loading


class SwitchDrawing(msgspec.Struct):
    device: str  # the actuator's device id (sw<index>)
    bus: int
    line: int  # position in the line list, or -1 for a switch on a transformer or between buses


class Topology(msgspec.Struct):
    """Everything of the drawing that does not change from step to step."""

    substation: str
    layout: str  # "geodata" or "radial"
    buses: list[BusDrawing]
    branches: list[BranchDrawing]  # lines first (same order as the line loading of a frame), then trafos
    switches: list[SwitchDrawing]
    meters_by_bus: dict[int, list[str]]
    n_lines: int


def _geodata(net) -> np.ndarray | None:
    """(n_bus, 2) lon/lat of every bus from pandapower's ``geo`` column, or None if any bus has none."""
    if "geo" not in net.bus:
        return None
    points = []
    for geo in net.bus.geo:
        if not isinstance(geo, str):
            return None
        try:
            coords = json.loads(geo).get("coordinates")
        except (ValueError, AttributeError):
            return None
        if not isinstance(coords, list) or len(coords) < 2:
            return None
        points.append((float(coords[0]), float(coords[1])))
    xy = np.array(points)
    if len(xy) < 2 or np.ptp(xy[:, 0]) + np.ptp(xy[:, 1]) == 0:
        return None
    xy[:, 0] *= math.cos(math.radians(float(xy[:, 1].mean())))  # degrees of longitude are shorter
    xy[:, 1] = -xy[:, 1]  # north up
    return xy


def _edges(net, pos: dict[int, int]) -> list[tuple[int, int]]:
    """Bus-position pairs joined by a line, transformer or bus-bus switch (open or closed)."""
    pairs = [(pos[a], pos[b]) for a, b in zip(net.line.from_bus, net.line.to_bus, strict=True)]
    pairs += [(pos[a], pos[b]) for a, b in zip(net.trafo.hv_bus, net.trafo.lv_bus, strict=True)]
    buses = net.switch[net.switch.et == "b"]
    pairs += [(pos[a], pos[b]) for a, b in zip(buses.bus, buses.element, strict=True)]
    return pairs


def radial_layout(n_bus: int, edges: list[tuple[int, int]], roots: list[int]) -> np.ndarray:
    """A tidy tree: depth from the feeding bus across, leaves one row apart down, a parent amid its children."""
    adjacent: dict[int, list[int]] = defaultdict(list)
    for a, b in edges:
        adjacent[a].append(b)
        adjacent[b].append(a)
    parent = np.full(n_bus, -1)
    depth = np.full(n_bus, -1)
    order: list[int] = []
    for root in [*roots, *range(n_bus)]:  # islands hang below the main tree
        if depth[root] >= 0:
            continue
        depth[root] = 0
        queue = deque([root])
        while queue:
            u = queue.popleft()
            order.append(u)
            for v in sorted(adjacent[u]):
                if depth[v] < 0:
                    depth[v], parent[v] = depth[u] + 1, u
                    queue.append(v)
    children: dict[int, list[int]] = defaultdict(list)
    for v in order:
        if parent[v] >= 0:
            children[int(parent[v])].append(v)
    row = np.zeros(n_bus)
    next_row = 0.0
    for v in _depth_first(order, parent, children):
        kids = children.get(v)
        if kids:
            row[v] = float(np.mean(row[kids]))
        else:
            row[v], next_row = next_row, next_row + 1
    return np.column_stack([depth.astype(float), row])


def _depth_first(order: list[int], parent: np.ndarray, children: dict[int, list[int]]) -> list[int]:
    """Every bus after all of its children (post-order), leaves in depth-first order."""
    out: list[int] = []
    for root in (v for v in order if parent[v] < 0):
        stack = [(root, False)]
        while stack:
            v, done = stack.pop()
            if done:
                out.append(v)
                continue
            stack.append((v, True))
            stack.extend((c, False) for c in reversed(children.get(v, [])))
    return out


def _scaled(xy: np.ndarray, width: float = 1000.0, height: float = 700.0, margin: float = 30.0) -> np.ndarray:
    """Fit the points into the page's drawing box, keeping their aspect ratio."""
    lo, span = xy.min(axis=0), np.ptp(xy, axis=0)
    span[span == 0] = 1.0
    scale = min((width - 2 * margin) / span[0], (height - 2 * margin) / span[1])
    centre = (np.array([width, height]) - span * scale) / 2  # the spare room on both sides
    return (xy - lo) * scale + centre


def topology_of(net, names: list[str], line_names: list[str], trafo_names: list[str],
                meter_bus: dict[str, int], switch_devices: list[str], substation: str) -> Topology:
    """The drawing of a pandapower net; ``meter_bus``: meter id -> bus position, ``switch_devices``: sw<index>."""
    pos = {int(b): i for i, b in enumerate(net.bus.index)}
    geo = _geodata(net)
    if geo is None:
        roots = [pos[int(b)] for b in net.ext_grid.bus] + [pos[int(b)] for b in net.trafo.hv_bus]
        xy, layout = radial_layout(len(pos), _edges(net, pos), roots), "radial"
    else:
        xy, layout = geo, "geodata"
    xy = _scaled(xy)
    buses = [BusDrawing(str(n), round(float(x), 1), round(float(y), 1), float(vn))
             for n, (x, y), vn in zip(names, xy, net.bus.vn_kv, strict=True)]
    branches = [BranchDrawing(n, pos[int(a)], pos[int(b)], "line")
                for n, a, b in zip(line_names, net.line.from_bus, net.line.to_bus, strict=True)]
    branches += [BranchDrawing(n, pos[int(a)], pos[int(b)], "trafo")
                 for n, a, b in zip(trafo_names, net.trafo.hv_bus, net.trafo.lv_bus, strict=True)]
    line_pos = {int(i): k for k, i in enumerate(net.line.index)}
    wanted = set(switch_devices)
    switches = [SwitchDrawing(f"sw{int(i)}", pos[int(bus)], line_pos.get(int(el), -1) if et == "l" else -1)
                for i, bus, el, et in zip(net.switch.index, net.switch.bus, net.switch.element, net.switch.et,
                                          strict=True) if f"sw{int(i)}" in wanted]
    by_bus: dict[int, list[str]] = defaultdict(list)
    for meter, bus in meter_bus.items():
        by_bus[int(bus)].append(meter)
    return Topology(substation, layout, buses, branches, switches, dict(by_bus), len(line_names))
