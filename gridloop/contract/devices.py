"""Device kinds and asset kinds of the registry, each device kind with the typed ``meta`` it may carry."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from gridloop.contract.bounds import DURATION_MAX_S
from gridloop.contract.topics import NAME_PATTERN


class DeviceType(StrEnum):
    ELECTRICITY_METER = "electricity_meter"
    SUBSTATION_METER = "substation_meter"
    HOME_METER = "home_meter"
    BLINK_DETECTOR = "blink_detector"
    HEAT_METER = "heat_meter"
    WATER_METER = "water_meter"
    GAS_METER = "gas_meter"
    GATEWAY = "gateway"
    DIA = "dia"
    SWITCH = "switch"
    BATTERY = "battery"
    FLEXIBLE_LOAD = "flexible_load"
    TRANSFORMER = "transformer"


class AssetKind(StrEnum):
    PERSON = "person"
    HOUSE = "house"
    LOCATION = "location"
    SUBSTATION = "substation"
    FEEDER = "feeder"


class Phase(StrEnum):
    """Which phases a meter is connected to."""

    L1 = "l1"
    L2 = "l2"
    L3 = "l3"
    ALL = "l1l2l3"


PHASES = (Phase.L1, Phase.L2, Phase.L3)


class DeviceMeta(BaseModel):
    """Meta of a device kind without declared fields; other keys are the owner's own (scalars only)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False, frozen=True)


class MeterMeta(DeviceMeta):
    """Meters: ``interval_s`` is how often the meter reads (completeness counts against it)."""

    interval_s: float | None = Field(None, gt=0, le=DURATION_MAX_S, description="seconds between readings")
    bus: str | None = Field(None, max_length=64, description="grid bus the meter is connected to")
    phase: Phase | None = None
    trafo: str | None = Field(None, max_length=64, description="transformer a substation meter measures")
    host_meter: str | None = Field(None, pattern=NAME_PATTERN, description="meter a blink detector reads")


class SwitchMeta(DeviceMeta):
    bus: int | None = Field(None, ge=0, description="grid bus the switch sits at")
    line: int | None = Field(None, ge=0, description="the line the switch connects, if any")
    protective: bool = Field(False, description="a feeder-head switch that protection may trip")


class BatteryMeta(DeviceMeta):
    p_max_kw: float | None = Field(None, ge=0, le=1e6)
    capacity_kwh: float | None = Field(None, ge=0, le=1e9)


METERS = frozenset({DeviceType.ELECTRICITY_METER, DeviceType.SUBSTATION_METER, DeviceType.HOME_METER,
                    DeviceType.BLINK_DETECTOR, DeviceType.HEAT_METER, DeviceType.WATER_METER, DeviceType.GAS_METER})
META_MODELS: dict[DeviceType, type[DeviceMeta]] = {
    **{t: MeterMeta for t in METERS}, DeviceType.SWITCH: SwitchMeta, DeviceType.BATTERY: BatteryMeta,
}


def meta_model(kind: DeviceType | str) -> type[DeviceMeta]:
    return META_MODELS.get(DeviceType(kind), DeviceMeta)


def parse_meta(kind: DeviceType | str, meta: dict | None) -> DeviceMeta:
    """The typed meta of a device of ``kind`` (ValidationError names the field and why)."""
    return meta_model(kind).model_validate(meta or {})
