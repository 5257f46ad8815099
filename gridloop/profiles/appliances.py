"""Appliance catalogue: energy share, ownership, timing habits, power factor and flexibility per class."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from gridloop.profiles import signatures as sig
from gridloop.profiles.params import HouseholdParams


@dataclass(frozen=True)
class ApplianceClass:
    """One activity-driven appliance class; kwh_per_owner is its yearly use at the 2,700 kWh reference."""

    name: str
    kwh_per_owner: float
    ownership: float
    power_factor: float
    signature: sig.Signature | None = None
    # time-of-day habit: mixture of (hour, sd_hours, weight)
    habit: tuple[tuple[float, float, float], ...] = ()
    weekend_ratio: float = 1.0
    winter_amplitude: float = 0.0
    flexible: bool = False
    balanced_3ph: bool = False
    # thermostat-driven loads run whether or not anyone is awake at home
    needs_presence: bool = True
    # energy set by its own parameter (EV driving), not part of the annual_kwh household target
    on_top: bool = False
    # share of the runs falling while the home is out that keep their time (delay-start timers)
    timer_share: float = 0.0
    # mean delay (s) after coming home of the runs that fell while the home was out
    return_delay_s: float = 7200.0


ACTIVITY_CLASSES: tuple[ApplianceClass, ...] = (
    ApplianceClass("kettle", 120, 0.6, 1.0, sig.kettle,
                   ((7.0, 0.7, 0.35), (10.5, 1.5, 0.2), (15.5, 1.5, 0.25), (19.5, 1.5, 0.2)), 1.15, 0.15),
    ApplianceClass("microwave", 70, 0.7, 0.95, sig.microwave,
                   ((7.5, 0.8, 0.2), (12.5, 1.0, 0.45), (18.5, 1.2, 0.35)), 1.1, 0.1),
    ApplianceClass("hob", 280, 1.0, 1.0, sig.hob,
                   ((7.3, 0.8, 0.15), (12.3, 1.0, 0.5), (18.7, 1.4, 0.35)), 1.25, 0.1),
    ApplianceClass("oven", 120, 0.8, 1.0, sig.oven, ((12.0, 1.0, 0.55), (18.3, 1.2, 0.45)), 1.5, 0.2),
    ApplianceClass("washing_machine", 170, 0.95, 0.9, sig.washing_machine,
                   ((10.0, 2.0, 0.55), (14.0, 2.5, 0.35), (19.0, 1.5, 0.1)), 1.4, 0.05, flexible=True,
                   timer_share=0.6),
    ApplianceClass("dishwasher", 230, 0.6, 0.97, sig.dishwasher,
                   ((13.5, 1.5, 0.5), (20.5, 1.2, 0.3), (9.0, 1.5, 0.2)), 1.2, 0.05, flexible=True,
                   timer_share=0.6),
    ApplianceClass("tumble_dryer", 280, 0.35, 0.98, sig.tumble_dryer,
                   ((11.5, 2.0, 0.6), (16.0, 2.5, 0.4)), 1.4, 0.45, flexible=True,
                   timer_share=0.6),
    ApplianceClass("cleaning", 90, 1.0, 0.95, sig.cleaning,
                   ((10.0, 1.5, 0.6), (15.0, 2.0, 0.4)), 1.3, 0.0),
    ApplianceClass("television", 260, 0.97, 0.95, sig.television,
                   ((8.0, 1.0, 0.1), (13.5, 2.0, 0.35), (19.5, 1.5, 0.35), (21.5, 1.0, 0.2)), 1.3, 0.15),
    ApplianceClass("computer", 200, 0.8, 0.9, sig.computer,
                   ((10.0, 3.0, 0.4), (15.0, 2.0, 0.3), (20.5, 1.8, 0.3)), 1.2, 0.1),
    ApplianceClass("comfort", 250, 0.6, 1.0, sig.comfort,
                   ((7.0, 1.5, 0.3), (12.5, 3.0, 0.35), (19.5, 2.0, 0.35)), 1.1, 0.3, needs_presence=False),
    ApplianceClass("water_heater", 1500, 0.15, 1.0, sig.water_heater,
                   ((7.5, 1.2, 0.3), (20.0, 2.0, 0.35), (2.0, 1.5, 0.35)), 1.1, 0.15, flexible=True,
                   balanced_3ph=True, needs_presence=False),
    ApplianceClass("ev", 2500, 0.0, 0.99, sig.ev_charge, ((18.0, 1.5, 0.75), (13.0, 3.0, 0.25)), 1.0, 0.15,
                   flexible=True, on_top=True, return_delay_s=900.0),  # plugged in on arrival
)

# continuously present loads (not activity driven)
STANDBY = ApplianceClass("standby", 280, 1.0, 0.7)
FRIDGE = ApplianceClass("fridge", 300, 1.0, 0.8, winter_amplitude=-0.12)
FREEZER = ApplianceClass("freezer", 250, 0.35, 0.8, winter_amplitude=-0.08)
LIGHTING = ApplianceClass("lighting", 220, 1.0, 0.9)
CONTINUOUS_CLASSES: tuple[ApplianceClass, ...] = (STANDBY, FRIDGE, FREEZER, LIGHTING)
ALL_CLASSES: tuple[ApplianceClass, ...] = CONTINUOUS_CLASSES + ACTIVITY_CLASSES


def ownership_prob(cls: ApplianceClass, params: HouseholdParams) -> float:
    """Ownership probability after scenario overrides."""
    default = {"water_heater": params.water_heater_share, "ev": params.ev_share}.get(cls.name, cls.ownership)
    return params.ownership.get(cls.name, default)


def energy_scale(params: HouseholdParams) -> float:
    """Factor mapping catalogue kWh to the class target so the population mean equals annual_kwh."""
    ref = sum(c.kwh_per_owner * ownership_prob(c, params) for c in ALL_CLASSES if not c.on_top)
    return params.annual_kwh / ref


def day_factor(cls: ApplianceClass, day_of_year: int, weekend: bool) -> float:
    """Seasonal x weekday modulation of use, with mean 1 over a year and over a week."""
    season = 1.0 + cls.winter_amplitude * np.cos(2 * np.pi * (day_of_year - 15) / 365.25)
    wd = 7.0 / (5.0 + 2.0 * cls.weekend_ratio)
    return float(season * (wd * cls.weekend_ratio if weekend else wd))


@cache
def mean_event_energy_j(cls: ApplianceClass, n: int = 4000) -> float:
    """Mean energy of one activation, estimated once with a fixed internal seed (calibration only)."""
    assert cls.signature is not None
    d, p = cls.signature(np.random.default_rng(12345), n)
    return float((d * p).sum() / n)


def draw_habit_times(rng: np.random.Generator, cls: ApplianceClass, e: int) -> np.ndarray:
    """Preferred start times (s after midnight) from the class's time-of-day mixture."""
    h = np.array(cls.habit)
    k = rng.choice(len(h), e, p=h[:, 2] / h[:, 2].sum())
    return (rng.normal(h[k, 0], h[k, 1]) % 24.0) * 3600.0
