"""District-heating, water and gas meters of a scenario, advanced every step and sampled at their interval.

District-heating buildings and gas-heated homes: space heating from the outdoor temperature (the heat
pumps' series, heating degrees below each building's limit, BDEW-like day shapes) plus hot water from the
occupants' days (``heat_demand``); gas homes add cooking. Water meters draw at a rate that follows
their household's occupancy. The meters integrate these flows into exact, consistent registers.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from gridloop.contract import DeviceType
from gridloop.profiles.heat_demand import BuildingHeat, DailyTemperature, TapWater, slot_of
from gridloop.profiles.heat_pump import OutdoorTemperature
from gridloop.profiles.params import HouseholdParams
from gridloop.scenario.model import UtilityMeters
from gridloop.stage import Clock, Outputs
from gridloop.virtual_meters.electricity import MeterSample
from gridloop.virtual_meters.meter_stages import UtilityReadings
from gridloop.virtual_meters.utility_meters import GasMeters, HeatMeters, WaterMeters

KINDS = {"heat": DeviceType.HEAT_METER, "water": DeviceType.WATER_METER, "gas": DeviceType.GAS_METER}


class UtilityMeterStage:
    """Heat, water and gas meters as arrays; one MeterSample per kind when due."""

    def __init__(self, u: UtilityMeters, seed: int, start: datetime, period_ms: int, offset_ms: int = 0,
                 household: HouseholdParams | None = None) -> None:
        """``household``: the scenario's household class, whose climate the buildings share (default Stockholm-like)."""
        rng = np.random.default_rng([seed, 5])
        self.period_ms, self.offset_ms = period_ms, offset_ms
        self.start = pd.Timestamp(start)
        self.intervals = {"heat": u.heat_interval, "water": u.water_interval, "gas": u.gas_interval}
        self.ids = {
            "heat": [f"dh{i + 1:03d}" for i in range(u.heat_meters)],
            "water": [f"wm{i + 1:04d}" for i in range(u.water_meters)],
            "gas": [f"gm{i + 1:04d}" for i in range(u.gas_meters)],
        }
        self._design_w = rng.uniform(0.6, 1.4, u.heat_meters) * u.heat_design_kw * 1000
        self._noise = rng
        self.heat = HeatMeters(u.heat_meters, self._design_w, rng,
                               initial_energy_wh=rng.uniform(1e6, 5e8, u.heat_meters))
        self.water = WaterMeters(u.water_meters, rng, initial_volume_m3=rng.uniform(10, 2000, u.water_meters))
        self.gas = GasMeters(u.gas_meters)
        gas_design_w = rng.uniform(0.6, 1.4, u.gas_meters) * u.gas_design_kw * 1000
        temperature = DailyTemperature(OutdoorTemperature.of(household or HouseholdParams(), self.start, seed))
        self.heat_demand = BuildingHeat(seed, 11, self._design_w, temperature)
        self.gas_demand = BuildingHeat(seed, 13, gas_design_w, temperature, dwellings=np.ones(u.gas_meters, int),
                                       cooking=True)
        self.tap_water = TapWater(seed, 15, u.water_meters)
        self._seq = {k: 0 for k in self.ids}

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.ids.values())

    def devices(self) -> list[tuple[str, str, float]]:
        """(device id, registry type, sampling interval s) of every utility meter."""
        return [(dev, KINDS[k], self.intervals[k]) for k, ids in self.ids.items() for dev in ids]

    def step(self, clock: Clock, inputs: Outputs) -> UtilityReadings:
        """Advance every meter over the step; returns the samples due at its start (taken before advancing)."""
        out = UtilityReadings()
        if not self.count:
            return out
        t_s, dt_s = clock.now_s, clock.period_s
        now = self.start + pd.Timedelta(milliseconds=clock.now_ms)
        day_slot = slot_of(now)
        readings = {}
        if self.ids["heat"]:
            space, water = self.heat_demand.power_w(*day_slot)
            demand = space * (1 + 0.05 * self._noise.standard_normal(len(space))) + water
            readings["heat"] = self.heat.step(dt_s, np.maximum(demand, 0.0))
        if self.ids["water"]:
            readings["water"] = self.water.step(dt_s, activity=self.tap_water.activity(*day_slot))
        if self.ids["gas"]:
            readings["gas"] = self.gas.step(dt_s, sum(self.gas_demand.power_w(*day_slot)))
        for kind, values in readings.items():
            interval = self.intervals[kind]
            if abs(t_s / interval - round(t_s / interval)) < 1e-9:
                self._seq[kind] += 1
                n = len(self.ids[kind])
                out.add(MeterSample(clock.unix_ms, self.ids[kind], np.full(n, self._seq[kind]),
                                    {q: np.round(np.asarray(v, dtype=float), 6) for q, v in values.items()}))
        return out
