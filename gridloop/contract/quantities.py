"""The quantities a reading may carry, each with its unit: the only place their names are spelled."""

from __future__ import annotations

from enum import StrEnum


class Unit(StrEnum):
    WH = "Wh"
    VARH = "varh"
    V = "V"
    A = "A"
    W = "W"
    VAR = "var"
    HZ = "Hz"
    ONE = "1"
    M3 = "m3"
    M3_PER_H = "m3/h"
    DEG_C = "°C"


class Quantity(StrEnum):
    """A measured quantity: ``q`` keys of a reading. Registers are cumulative and never decrease."""

    ENERGY_ACTIVE_IMPORT = "electricity.energy.active.import"
    ENERGY_ACTIVE_EXPORT = "electricity.energy.active.export"
    ENERGY_REACTIVE_IMPORT = "electricity.energy.reactive.import"
    ENERGY_REACTIVE_EXPORT = "electricity.energy.reactive.export"
    VOLTAGE_L1 = "electricity.voltage.l1"
    VOLTAGE_L2 = "electricity.voltage.l2"
    VOLTAGE_L3 = "electricity.voltage.l3"
    CURRENT_L1 = "electricity.current.l1"
    CURRENT_L2 = "electricity.current.l2"
    CURRENT_L3 = "electricity.current.l3"
    POWER_ACTIVE_L1 = "electricity.power.active.l1"
    POWER_ACTIVE_L2 = "electricity.power.active.l2"
    POWER_ACTIVE_L3 = "electricity.power.active.l3"
    POWER_ACTIVE_TOTAL = "electricity.power.active.total"
    POWER_REACTIVE_L1 = "electricity.power.reactive.l1"
    POWER_REACTIVE_L2 = "electricity.power.reactive.l2"
    POWER_REACTIVE_L3 = "electricity.power.reactive.l3"
    POWER_REACTIVE_TOTAL = "electricity.power.reactive.total"
    FREQUENCY = "electricity.frequency"
    POWER_FACTOR_L1 = "electricity.power_factor.l1"
    POWER_FACTOR_L2 = "electricity.power_factor.l2"
    POWER_FACTOR_L3 = "electricity.power_factor.l3"
    HEATING_ENERGY = "heating.energy"
    HEATING_VOLUME = "heating.volume"
    HEATING_FLOWRATE = "heating.flowrate"
    HEATING_POWER = "heating.power"
    HEATING_TEMP_INLET = "heating.temp.primary.inlet"
    HEATING_TEMP_OUTLET = "heating.temp.primary.outlet"
    WATER_VOLUME = "water.volume"
    WATER_FLOWRATE = "water.flowrate"
    GAS_VOLUME = "gas.volume"

    @property
    def unit(self) -> Unit:
        return UNITS[self]

    @property
    def cumulative(self) -> bool:
        """A register (energy or volume): it integrates and never decreases."""
        return self in REGISTERS


Q = Quantity
UNITS: dict[Quantity, Unit] = {
    Q.ENERGY_ACTIVE_IMPORT: Unit.WH, Q.ENERGY_ACTIVE_EXPORT: Unit.WH,
    Q.ENERGY_REACTIVE_IMPORT: Unit.VARH, Q.ENERGY_REACTIVE_EXPORT: Unit.VARH,
    Q.VOLTAGE_L1: Unit.V, Q.VOLTAGE_L2: Unit.V, Q.VOLTAGE_L3: Unit.V,
    Q.CURRENT_L1: Unit.A, Q.CURRENT_L2: Unit.A, Q.CURRENT_L3: Unit.A,
    Q.POWER_ACTIVE_L1: Unit.W, Q.POWER_ACTIVE_L2: Unit.W, Q.POWER_ACTIVE_L3: Unit.W, Q.POWER_ACTIVE_TOTAL: Unit.W,
    Q.POWER_REACTIVE_L1: Unit.VAR, Q.POWER_REACTIVE_L2: Unit.VAR, Q.POWER_REACTIVE_L3: Unit.VAR,
    Q.POWER_REACTIVE_TOTAL: Unit.VAR,
    Q.FREQUENCY: Unit.HZ,
    Q.POWER_FACTOR_L1: Unit.ONE, Q.POWER_FACTOR_L2: Unit.ONE, Q.POWER_FACTOR_L3: Unit.ONE,
    Q.HEATING_ENERGY: Unit.WH, Q.HEATING_VOLUME: Unit.M3, Q.HEATING_FLOWRATE: Unit.M3_PER_H, Q.HEATING_POWER: Unit.W,
    Q.HEATING_TEMP_INLET: Unit.DEG_C, Q.HEATING_TEMP_OUTLET: Unit.DEG_C,
    Q.WATER_VOLUME: Unit.M3, Q.WATER_FLOWRATE: Unit.M3_PER_H,
    Q.GAS_VOLUME: Unit.M3,
}
REGISTERS = frozenset({Q.ENERGY_ACTIVE_IMPORT, Q.ENERGY_ACTIVE_EXPORT, Q.ENERGY_REACTIVE_IMPORT,
                       Q.ENERGY_REACTIVE_EXPORT, Q.HEATING_ENERGY, Q.HEATING_VOLUME, Q.WATER_VOLUME, Q.GAS_VOLUME})
QUANTITY_NAMES = frozenset(q.value for q in Quantity)

# Per-phase families, indexed by phase (l1, l2, l3).
VOLTAGE = (Q.VOLTAGE_L1, Q.VOLTAGE_L2, Q.VOLTAGE_L3)
CURRENT = (Q.CURRENT_L1, Q.CURRENT_L2, Q.CURRENT_L3)
POWER_ACTIVE = (Q.POWER_ACTIVE_L1, Q.POWER_ACTIVE_L2, Q.POWER_ACTIVE_L3)
POWER_REACTIVE = (Q.POWER_REACTIVE_L1, Q.POWER_REACTIVE_L2, Q.POWER_REACTIVE_L3)
POWER_FACTOR = (Q.POWER_FACTOR_L1, Q.POWER_FACTOR_L2, Q.POWER_FACTOR_L3)
