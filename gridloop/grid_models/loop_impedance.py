"""Loop impedance from each bus back to the transformer that feeds it, for first-order voltage changes.

A home's voltage moves with its own current within a grid step (1 Hz meters on 1-min steps):
ΔV ≈ -(R·ΔP + X·ΔQ) / V. The R and X here are what that current sees, referred to the LV side:

- the lines on the radial path from the feeding transformer's LV busbar to the bus (normal switching
  state, closed bus-bus switches count as zero), each ``r_ohm_per_km · length_km / parallel`` (X likewise);
- the transformer's short-circuit impedance ``vk% · V_lv² / S_n`` (R from ``vkr%``), divided by its ``parallel``.

Assumptions, stated once: the upstream (MV grid, external grid) is stiff; a single-phase home's current
returns through a neutral of the same impedance as its phase conductor, so it sees twice the line
impedance (phase + neutral) plus the transformer's (for a Dyn transformer the zero-sequence impedance is
about the positive-sequence one, so the transformer counts once); a three-phase home's change is taken as
balanced: a third of it per phase and no neutral current, so it sees a third of (line + transformer).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from gridloop.grid_models.net_cache import BUS_IMPEDANCE, NetTables


@dataclass(frozen=True)
class BusImpedance:
    """Per bus (net.bus order): the feeding transformer's position (-1 for none) and the path's R, X in ohm."""

    trafo: np.ndarray
    line_r: np.ndarray
    line_x: np.ndarray
    trafo_r: np.ndarray  # per bus: its transformer's short-circuit R at the LV side (0 without one)
    trafo_x: np.ndarray

    def home_loop(self, bus: np.ndarray, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """R, X (ohm) such that a home's voltage changes by -(R·ΔP + X·ΔQ)/V for its total ΔP, ΔQ.

        ``phase``: -1 for a three-phase home (balanced change), else its phase (phase + neutral loop).
        """
        single = np.asarray(phase) >= 0
        r = np.where(single, 2.0 * self.line_r[bus] + self.trafo_r[bus], (self.line_r[bus] + self.trafo_r[bus]) / 3)
        x = np.where(single, 2.0 * self.line_x[bus] + self.trafo_x[bus], (self.line_x[bus] + self.trafo_x[bus]) / 3)
        return r, x


def bus_impedance(net) -> BusImpedance:
    """Walk each in-service transformer's LV side breadth-first (no transformers crossed) summing line R, X.

    A net read from the network cache gives the values computed when it was built (if its switches are unchanged).
    """
    if isinstance(net, NetTables):
        stored = net.derived(BUS_IMPEDANCE)
        if stored is not None:
            return BusImpedance(**{k: np.array(v) for k, v in stored.items()})
        net = net.to_pandapower()
    import pandapower.topology as top

    n = len(net.bus)
    pos = {b: i for i, b in enumerate(net.bus.index)}
    trafo = np.full(n, -1, dtype=np.int64)
    line_r, line_x = np.zeros(n), np.zeros(n)
    t = net.trafo
    zbase = t.vn_lv_kv.to_numpy(dtype=float) ** 2 / t.sn_mva.to_numpy(dtype=float)
    par = t.parallel.to_numpy(dtype=float) if "parallel" in t.columns else np.ones(len(t))
    tr_r = t.vkr_percent.to_numpy(dtype=float) / 100 * zbase / par
    tr_z = t.vk_percent.to_numpy(dtype=float) / 100 * zbase / par
    tr_x = np.sqrt(np.maximum(tr_z ** 2 - tr_r ** 2, 0.0))
    lines = net.line
    lpar = lines.parallel.to_numpy(dtype=float) if "parallel" in lines.columns else np.ones(len(lines))
    length = lines.length_km.to_numpy(dtype=float) / lpar
    r_of = dict(zip(lines.index, lines.r_ohm_per_km.to_numpy(dtype=float) * length, strict=True))
    x_of = dict(zip(lines.index, lines.x_ohm_per_km.to_numpy(dtype=float) * length, strict=True))
    graph = top.create_nxgraph(net, respect_switches=True, include_trafos=False, include_trafo3ws=False, multi=True)
    in_service = t.in_service.to_numpy(dtype=bool)
    for k, lv in enumerate(t.lv_bus.to_numpy()):
        if not in_service[k] or trafo[pos[lv]] >= 0 or lv not in graph:
            continue
        trafo[pos[lv]] = k
        queue = deque([lv])
        while queue:
            bus = queue.popleft()
            i = pos[bus]
            for _, nxt, key in graph.edges(bus, keys=True):
                j = pos[nxt]
                if trafo[j] >= 0:
                    continue
                kind, idx = key if isinstance(key, tuple) else ("", -1)
                trafo[j] = k
                line_r[j] = line_r[i] + (r_of.get(idx, 0.0) if kind == "line" else 0.0)
                line_x[j] = line_x[i] + (x_of.get(idx, 0.0) if kind == "line" else 0.0)
                queue.append(nxt)
    fed = trafo >= 0
    return BusImpedance(trafo, line_r, line_x, np.where(fed, tr_r[np.maximum(trafo, 0)], 0.0),
                        np.where(fed, tr_x[np.maximum(trafo, 0)], 0.0))
