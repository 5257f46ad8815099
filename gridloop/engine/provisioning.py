"""What a head-end's provisioning registers for one substation: its asset tree and its devices.

Ids are the substation's local ones with its namespace prefix (``s002-m00001``), so several substations
(and partitions) share one tenant without clashes. Every device's meta is the contract's typed model.
"""

from __future__ import annotations

from gridloop.contract import AssetKind, DeviceType, Phase
from gridloop.contract.devices import PHASES, BatteryMeta, MeterMeta, SwitchMeta
from gridloop.engine.substation_unit import SubstationUnit
from gridloop.grid_models.topology import radial_tree
from gridloop.sdk import PlatformClient

ROOT = "substation-1"


def provision(api: PlatformClient, unit: SubstationUnit, dia_id: str, owned: set[str] | None = None) -> None:
    """Register the substation's assets (root first, then its buses breadth-first) and devices.

    ``owned``: the devices this partition's DIA publishes for, when partitions share one substation: only those
    are registered behind it (the platform accepts a device's readings only from its gateway); the others are
    registered by the partitions that own them."""
    assets, devices = registry_entries(unit, dia_id)
    if owned is not None:
        devices = [d for d in devices if "gateway" not in d or d["id"] in owned]
    for asset in assets:
        api.create_asset(asset)
    api.provision(devices)


def _meter(**fields) -> dict:
    return MeterMeta(**fields).model_dump(mode="json", exclude_none=True)


def registry_entries(unit: SubstationUnit, dia_id: str) -> tuple[list[dict], list[dict]]:
    """Assets and devices of one substation, under its namespace; ``dia_id`` is the local DIA id."""
    s, grid, meters, p = unit.s, unit.grid, unit.meters, unit.prefix
    assets = [{"id": ROOT, "kind": AssetKind.SUBSTATION, "name": s.grid.network}]
    tree = radial_tree(grid.net)
    for bus, (parent, line) in tree.items():  # parents first: the tree is in breadth-first order
        assets.append({"id": f"bus-{bus}", "kind": AssetKind.LOCATION, "name": f"line {line}" if line >= 0 else "",
                       "parent": f"bus-{parent}" if parent >= 0 else ROOT})
    bus_labels = grid.net.bus.index.to_numpy()
    devices: list[dict] = [{"id": dia_id, "type": DeviceType.DIA, "asset": ROOT}]
    devices += [
        {"id": dev, "type": DeviceType.HOME_METER if hz else DeviceType.ELECTRICITY_METER,
         "phases": 3 if phase < 0 else 1, "gateway": dia_id,
         "asset": f"bus-{bus_labels[int(b)]}" if int(bus_labels[int(b)]) in tree else ROOT,
         "meta": _meter(interval_s=1.0 if hz else s.meters.interval, bus=str(grid.bus_names[int(b)]),
                        phase=PHASES[phase] if phase >= 0 else Phase.ALL)}
        for dev, b, phase, hz in zip(meters.ids, meters.bus_index, meters.phase.tolist(), meters.one_hz.tolist(),
                                     strict=True)
    ]
    devices += [{"id": a.device, "type": DeviceType.TRANSFORMER, "asset": ROOT}
                for a in unit.actuators if a.kind == DeviceType.TRANSFORMER]
    lv_buses = set(grid.net.trafo.lv_bus.tolist())
    sw = grid.net.switch
    devices += [{"id": a.device, "type": DeviceType.SWITCH, "asset": ROOT, "meta": SwitchMeta(
        bus=int(sw.bus.at[i]), line=int(sw.element.at[i]) if sw.et.at[i] == "l" else None,
        protective=bool(sw.et.at[i] == "l" and sw.bus.at[i] in lv_buses)).model_dump(mode="json")}
        for a in unit.actuators if a.kind == DeviceType.SWITCH for i in (int(a.device[2:]),)]
    lv_labels = grid.net.trafo.lv_bus.to_numpy()
    devices += [{"id": dev, "type": DeviceType.SUBSTATION_METER, "phases": 3, "gateway": dia_id,
                 "asset": f"bus-{lv_labels[i]}" if int(lv_labels[i]) in tree else ROOT,
                 "meta": _meter(interval_s=unit.substation.interval_s, trafo=str(grid.trafo_names[i]))}
                for i, dev in enumerate(unit.substation.ids)]
    devices += [{"id": dev, "type": kind, "gateway": dia_id, "meta": _meter(interval_s=interval)}
                for dev, kind, interval in unit.utilities.devices()]
    devices += [{"id": dev, "type": DeviceType.BLINK_DETECTOR, "gateway": dia_id,
                 "asset": devices[1 + int(home)]["asset"],
                 "meta": _meter(interval_s=s.meters.interval, host_meter=p + meters.ids[int(home)])}
                for dev, home in zip(meters.blink.ids, meters.blink_homes, strict=True)]
    devices += [{"id": b.id, "type": DeviceType.BATTERY, "asset": ROOT,
                 "meta": BatteryMeta(p_max_kw=b.p_max_kw, capacity_kwh=b.capacity_kwh).model_dump(mode="json")}
                for b in s.grid.batteries]
    if not p:
        return assets, devices
    return [_namespaced(a, p, ("id", "parent")) for a in assets], \
        [_namespaced(d, p, ("id", "gateway", "asset")) for d in devices]


def _namespaced(entry: dict, prefix: str, keys: tuple[str, ...]) -> dict:
    return {k: (prefix + v if k in keys and isinstance(v, str) else v) for k, v in entry.items()}
