"""The drawing: SimBench's geodata where the net has it, a radial tree otherwise; meters and switches by bus."""

from __future__ import annotations

import pandapower as pp

from gridloop.grid_models.networks import load_network
from gridloop.view.topology import topology_of


def _feeder_without_geodata():
    """MV bus -> transformer -> LV busbar with two feeders, one branching: 7 buses, no coordinates."""
    net = pp.create_empty_network()
    mv = pp.create_bus(net, 10.0)
    lv = [pp.create_bus(net, 0.4) for _ in range(6)]
    pp.create_ext_grid(net, mv)
    pp.create_transformer(net, mv, lv[0], "0.4 MVA 10/0.4 kV")
    for a, b in [(0, 1), (1, 2), (1, 3), (0, 4), (4, 5)]:
        pp.create_line(net, lv[a], lv[b], 0.1, "NAYY 4x150 SE")
    pp.create_switch(net, lv[0], 3, et="l", closed=True)  # on the line 0-4
    return net


def test_a_net_without_geodata_is_drawn_as_a_radial_tree():
    net = _feeder_without_geodata()
    names = [f"b{i}" for i in range(7)]
    t = topology_of(net, names, [f"l{i}" for i in range(5)], ["t0"], {"m1": 3, "m2": 3, "m3": 6}, ["sw0"], "s1")
    assert t.layout == "radial"
    x = [b.x for b in t.buses]
    y = [b.y for b in t.buses]
    # depth from the feeding MV bus grows across: MV, busbar, first bus of each feeder, their children
    assert x[0] < x[1] < x[2] == x[5] < x[3] == x[4] == x[6]
    assert len({(round(a), round(b)) for a, b in zip(x, y, strict=True)}) == 7, "no two buses on one spot"
    assert min(y[3], y[4]) < y[2] < max(y[3], y[4]), "a bus sits amid its children"
    assert all(0 <= v <= 1000 for v in x) and all(0 <= v <= 700 for v in y)
    assert [(b.a, b.b, b.kind) for b in t.branches][-1] == (0, 1, "trafo") and t.n_lines == 5
    assert t.meters_by_bus == {3: ["m1", "m2"], 6: ["m3"]}
    assert [(s.device, s.bus, s.line) for s in t.switches] == [("sw0", 1, 3)]


def test_simbench_geodata_places_the_buses():
    net = load_network("1-LV-urban6--0-sw")
    n = len(net.bus)
    t = topology_of(net, [str(i) for i in range(n)], [str(i) for i in range(len(net.line))], ["t"], {}, [], "s")
    assert t.layout == "geodata"
    xs, ys = [b.x for b in t.buses], [b.y for b in t.buses]
    assert len(set(zip(xs, ys, strict=True))) > n * 0.8  # real places, hardly any two on one spot
    assert max(ys) - min(ys) > 600 or max(xs) - min(xs) > 900  # fills the drawing box along one side
