"""Household-class parameters: the knobs a scenario sets for one class of homes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HouseholdParams:
    """Parameters of one household class; annual_kwh is the class mean including electric water heating."""

    annual_kwh: float = 2700.0
    three_phase_share: float = 0.3
    # probability of 1..5 occupants
    size_probs: tuple[float, ...] = (0.30, 0.33, 0.16, 0.15, 0.06)
    # lognormal sigma of the home-to-home consumption multiplier (on top of household size)
    home_sigma: float = 0.30
    latitude: float = 59.33
    longitude: float = 18.07
    # used for PV sun position when the start timestamp is naive
    timezone: str = "Europe/Stockholm"
    # probability that a home heats water electrically (boiler); part of annual_kwh on average
    water_heater_share: float = 0.15
    # probability that the adults of a home go out to work/school on weekdays
    worker_share: float = 0.4
    # probability that a home is away for a whole day (trips, holidays)
    away_day_prob: float = 0.03
    # ownership probability per appliance class (overrides of the catalogue defaults)
    ownership: dict[str, float] = field(default_factory=dict)
    # rooftop PV (net metering: P becomes consumption minus generation); off by default
    pv_share: float = 0.0
    pv_kwp: float = 4.0
    # 1.0: Stockholm-like share of cloudy days; lower for sunnier climates (Rome ~0.6)
    pv_cloudiness: float = 1.0
    # EV home charging, on top of annual_kwh (flexible: curtailable); off by default
    ev_share: float = 0.0
    ev_kwh: float = 2500.0
    # air-source heat pump for space heating, on top of annual_kwh (temperature-driven); off by default
    heat_pump_share: float = 0.0
    # outdoor climate (heat pumps, district heat, gas, hot water): annual mean of the daily mean temperature and
    # half its January-July difference, °C; Stockholm-like by default
    outdoor_mean_c: float = 7.0
    outdoor_swing_c: float = 10.0


ITALIAN_FAMILY = HouseholdParams(
    annual_kwh=2700.0, latitude=41.9, longitude=12.5, timezone="Europe/Rome",
    size_probs=(0.10, 0.25, 0.30, 0.27, 0.08), water_heater_share=0.25, pv_cloudiness=0.6,
    outdoor_mean_c=15.8, outdoor_swing_c=8.6,  # Rome: January about 7.5 °C, July about 25 °C
)
SWEDISH_APARTMENT = HouseholdParams(
    annual_kwh=2000.0, latitude=59.33, size_probs=(0.45, 0.33, 0.11, 0.08, 0.03), water_heater_share=0.0,
    three_phase_share=0.6,
)
