"""The grid topology as a service sees it: the registry's location assets, meters and switches."""

from __future__ import annotations

from dataclasses import dataclass

from gridloop.contract import AssetKind, DeviceType
from gridloop.contract.devices import SwitchMeta, parse_meta
from gridloop.contract.rest import Asset, Device


@dataclass(frozen=True)
class Switch:
    id: str
    meta: SwitchMeta


class Topology:
    """The radial tree of locations, meters and switches, as provisioned in the registry."""

    def __init__(self, assets: list[Asset], devices: list[Device]) -> None:
        locations = [a for a in assets if a.kind == AssetKind.LOCATION]
        self.parent = {a.id: a.parent for a in locations}
        self.meter_location = {d.id: d.asset for d in devices
                               if d.type == DeviceType.ELECTRICITY_METER and d.asset in self.parent}
        self.switches = [Switch(d.id, parse_meta(d.type, d.meta)) for d in devices  # type: ignore[arg-type]
                         if d.type == DeviceType.SWITCH]
        self.line_of_location = {a.id: int(a.name.split()[-1]) for a in locations if a.name.startswith("line ")}

    @classmethod
    def behind_gateway(cls, assets: list[Asset], devices: list[Device], gateway: str | None) -> Topology:
        """The topology of one substation of several: what its DIA (``gateway``) publishes for, the devices at its
        substation asset (switches, transformer) and the locations below it; all of it when ``gateway`` is None."""
        if gateway is None:
            return cls(assets, devices)
        root = next((d.asset for d in devices if d.id == gateway), None)
        parent = {a.id: a.parent for a in assets}

        def below_root(asset: str | None) -> bool:
            seen = 0
            while asset is not None and seen <= len(parent):
                if asset == root:
                    return True
                asset, seen = parent.get(asset), seen + 1
            return False

        own = [d for d in devices if d.gateway == gateway or (root is not None and d.asset == root)]
        return cls([a for a in assets if below_root(a.id)], own)

    def depth(self, loc: str) -> int:
        d = 0
        while self.parent.get(loc) in self.parent:
            loc = self.parent[loc]
            d += 1
        return d

    def lines_above(self, loc: str | None) -> list[int]:
        """Lines on the path from the parent of ``loc`` up to the supply (not the line feeding loc)."""
        lines = []
        loc = self.parent.get(loc) if loc else None
        while loc in self.parent:
            if self.line_of_location.get(loc, -1) >= 0:
                lines.append(self.line_of_location[loc])
            loc = self.parent[loc]
        return lines

    def is_below(self, loc: str | None, ancestor: str) -> bool:
        """True if ``loc`` is ``ancestor`` or lies downstream of it."""
        while loc is not None:
            if loc == ancestor:
                return True
            loc = self.parent.get(loc)
        return False

    def meters_below(self, ancestor: str) -> list[str]:
        """Electricity meters at or downstream of a location (e.g. a substation's LV busbar)."""
        return sorted(m for m, loc in self.meter_location.items() if self.is_below(loc, ancestor))

    def switches_on_line(self, line: int) -> list[Switch]:
        return [s for s in self.switches if s.meta.line == line]
