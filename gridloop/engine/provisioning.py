"""What a head-end's provisioning registers for one substation: its asset tree and its devices.

Ids are the substation's local ones with its namespace prefix (``s002-m00001``), so several substations
(and partitions) share one tenant without clashes.
"""

from __future__ import annotations

from gridloop.engine.platform_client import PlatformClient
from gridloop.engine.substation_unit import SubstationUnit
from gridloop.grid_models.topology import radial_tree


def provision(api: PlatformClient, unit: SubstationUnit, dia_id: str) -> None:
    """Register the substation's assets (root first, then its buses breadth-first) and devices."""
    assets, devices = registry_entries(unit, dia_id)
    for asset in assets:
        api.create_asset(asset)
    api.provision(devices)


def registry_entries(unit: SubstationUnit, dia_id: str) -> tuple[list[dict], list[dict]]:
    """Assets and devices of one substation, under its namespace; ``dia_id`` is the local DIA id."""
    s, grid, meters = unit.s, unit.grid, unit.meters
    root = "substation-1"
    assets = [{"id": root, "kind": "substation", "name": s.grid.network}]
    tree = radial_tree(grid.net)
    for bus, (parent, line) in tree.items():  # parents first: the tree is in breadth-first order
        assets.append({"id": f"bus-{bus}", "kind": "location", "name": f"line {line}" if line >= 0 else "",
                       "parent": f"bus-{parent}" if parent >= 0 else root})
    bus_labels = grid.net.bus.index.to_numpy()
    devices = [{"id": dia_id, "type": "dia", "asset": root}]
    devices += [
        {"id": dev, "type": "home_meter" if hz else "electricity_meter", "phases": 3 if phase < 0 else 1,
         "gateway": dia_id,
         "asset": f"bus-{bus_labels[int(b)]}" if int(bus_labels[int(b)]) in tree else root,
         "meta": {"interval_s": 1.0 if hz else s.meters.interval, "bus": str(grid.bus_names[int(b)]),
                  "phase": ["l1", "l2", "l3"][phase] if phase >= 0 else "l1l2l3"}}
        for dev, b, phase, hz in zip(meters.ids, meters.bus_index, meters.phase.tolist(), meters.one_hz.tolist(),
                                     strict=True)
    ]
    switches = [a.device for a in unit.actuators if a.kind == "switch"]
    devices += [{"id": a.device, "type": "transformer", "asset": root}
                for a in unit.actuators if a.kind == "transformer"]
    lv_buses = set(grid.net.trafo.lv_bus.tolist())
    sw_table = grid.net.switch
    devices += [{"id": sw, "type": "switch", "asset": root, "meta": {
        "bus": int(sw_table.bus.at[int(sw[2:])]),
        "line": int(sw_table.element.at[int(sw[2:])]) if sw_table.et.at[int(sw[2:])] == "l" else None,
        "protective": bool(sw_table.et.at[int(sw[2:])] == "l" and sw_table.bus.at[int(sw[2:])] in lv_buses)}}
        for sw in switches]
    lv_labels = grid.net.trafo.lv_bus.to_numpy()
    substation = unit.substation
    devices += [{"id": dev, "type": "substation_meter", "phases": 3, "gateway": dia_id,
                 "asset": f"bus-{lv_labels[i]}" if int(lv_labels[i]) in tree else root,
                 "meta": {"interval_s": substation.interval_s, "trafo": str(grid.trafo_names[i])}}
                for i, dev in enumerate(substation.ids)]
    devices += [{"id": dev, "type": kind, "gateway": dia_id, "meta": {"interval_s": interval}}
                for dev, kind, interval in unit.utilities.devices()]
    devices += [{"id": dev, "type": "blink_detector", "gateway": dia_id,
                 "asset": devices[1 + int(home)]["asset"],
                 "meta": {"interval_s": s.meters.interval, "host_meter": meters.ids[int(home)]}}
                for dev, home in zip(meters.blink.ids, meters.blink_homes, strict=True)]
    devices += [{"id": b.id, "type": "battery", "asset": root,
                 "meta": {"p_max_kw": b.p_max_kw, "capacity_kwh": b.capacity_kwh}} for b in s.grid.batteries]
    if not unit.prefix:
        return assets, devices
    return [_namespaced(a, unit.prefix, ("id", "parent")) for a in assets], \
        [_namespaced(d, unit.prefix, ("id", "gateway", "asset")) for d in devices]


def _namespaced(entry: dict, prefix: str, keys: tuple[str, ...]) -> dict:
    out = {k: (prefix + v if k in keys and isinstance(v, str) else v) for k, v in entry.items()}
    meta = out.get("meta")
    if meta and "host_meter" in meta:
        out["meta"] = {**meta, "host_meter": prefix + meta["host_meter"]}
    return out
