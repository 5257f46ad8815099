"""District-heating, water and gas meters, vectorised over meters.

Each ``step(dt_s, ...)`` returns the contract's quantities (:class:`~gridloop.contract.Quantity`) as arrays,
one value per meter.  Registers (``heating.energy``, ``heating.volume``, ``water.volume``,
``gas.volume``) integrate the true flows exactly and are shown truncated to their resolution,
so they never go backwards and always agree with the integrated flow within one resolution
step.  Accuracy-class noise applies to instantaneous values only.  The heat meter computes
its power from its own (noisy) flow and temperature readings, as a real calculator does, so
the reported values satisfy ``Q = rho * cp * flow * (T_in - T_out)`` exactly.
All randomness comes from the ``numpy.random.Generator`` given to the constructor.

Example::

    heat = HeatMeters(7, design_power_w=60_000.0, rng=rng)
    readings = heat.step(300.0, heat_power_w)  # {Quantity.HEATING_ENERGY: array, ...}
    water = WaterMeters(20, rng).step(10.0)  # draws generated inside
    gas = GasMeters(5).step(60.0, gas_power_w)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridloop.contract.quantities import Quantity

RHO_WATER_KG_M3 = 983.2  # at ~60 degC, mid-way between district-heating supply and return
CP_WATER_J_KGK = 4185.0
J_PER_WH = 3600.0


def _truncate(value: np.ndarray, resolution: float) -> np.ndarray:
    """A register's display: the value cut down to its last full resolution step."""
    return np.floor(value / resolution + 1e-9) * resolution


def _as_array(x: float | np.ndarray, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, dtype=float), (n,)).copy()


@dataclass(frozen=True)
class HeatMeterParams:
    """EN 1434 heat meter on a district-heating substation's primary side."""

    supply_temp_c: float = 80.0
    delta_t_design_k: float = 35.0  # supply-return difference at design power
    delta_t_min_k: float = 15.0  # at low load return water is warmer
    flow_noise_rel: float = 0.01  # 1 sigma, flow sensor class 2 (max error ~2 %)
    temp_noise_k: float = 0.05  # 1 sigma per temperature sensor (matched Pt500 pair)
    supply_temp_sigma_k: float = 1.0  # slow wander of the network supply temperature
    energy_resolution_wh: float = 1000.0  # register counts whole kWh
    volume_resolution_m3: float = 0.01


class HeatMeters:
    """Heat meters driven by each building's heat demand in W."""

    def __init__(
        self,
        n_meters: int,
        design_power_w: float | np.ndarray,
        rng: np.random.Generator,
        params: HeatMeterParams | None = None,
        initial_energy_wh: float | np.ndarray = 0.0,
        initial_volume_m3: float | np.ndarray = 0.0,
    ) -> None:
        self.n_meters = int(n_meters)
        self.params = params or HeatMeterParams()
        self.rng = rng
        self.design_power_w = _as_array(design_power_w, self.n_meters)
        self.energy_wh = _as_array(initial_energy_wh, self.n_meters)  # exact integrals behind the registers
        self.volume_m3 = _as_array(initial_volume_m3, self.n_meters)
        self._supply_offset_k = np.zeros(self.n_meters)

    def step(self, dt_s: float, heat_power_w: np.ndarray) -> dict[str, np.ndarray]:
        """Advance by ``dt_s`` at the given heat demand and return the meter readings."""
        p = self.params
        power = np.maximum(np.asarray(heat_power_w, dtype=float), 0.0)
        load = np.clip(power / self.design_power_w, 0.0, 1.0)
        delta_t = p.delta_t_min_k + (p.delta_t_design_k - p.delta_t_min_k) * load
        flow_m3_s = power / (RHO_WATER_KG_M3 * CP_WATER_J_KGK * delta_t)
        # supply temperature wanders slowly (Ornstein-Uhlenbeck, 1 h time constant)
        decay = np.exp(-dt_s / 3600.0)
        self._supply_offset_k = self._supply_offset_k * decay + p.supply_temp_sigma_k * np.sqrt(
            1.0 - decay**2
        ) * self.rng.standard_normal(self.n_meters)
        t_in = p.supply_temp_c + self._supply_offset_k
        t_out = t_in - delta_t

        self.energy_wh += power * dt_s / J_PER_WH
        self.volume_m3 += flow_m3_s * dt_s

        flow_error = p.flow_noise_rel * self.rng.standard_normal(self.n_meters)
        flow_meas = np.maximum(flow_m3_s * (1.0 + flow_error), 0.0)
        t_in_meas = t_in + p.temp_noise_k * self.rng.standard_normal(self.n_meters)
        t_out_meas = t_out + p.temp_noise_k * self.rng.standard_normal(self.n_meters)
        power_meas = RHO_WATER_KG_M3 * CP_WATER_J_KGK * flow_meas * (t_in_meas - t_out_meas)
        return {
            Quantity.HEATING_ENERGY: _truncate(self.energy_wh, p.energy_resolution_wh),
            Quantity.HEATING_VOLUME: _truncate(self.volume_m3, p.volume_resolution_m3),
            Quantity.HEATING_FLOWRATE: flow_meas * 3600.0,
            Quantity.HEATING_POWER: power_meas,
            Quantity.HEATING_TEMP_INLET: t_in_meas,
            Quantity.HEATING_TEMP_OUTLET: t_out_meas,
        }


@dataclass(frozen=True)
class WaterMeterParams:
    """A domestic cold-water meter and the tap draws that drive it."""

    draws_per_hour: float = 3.0
    mean_draw_s: float = 45.0  # lognormal draw durations
    draw_sigma: float = 0.8
    flow_min_m3h: float = 0.2  # 3.3 l/min, a tap ajar
    flow_max_m3h: float = 1.2  # 20 l/min, a shower or a bath filling
    flow_noise_rel: float = 0.02  # 1 sigma; MID R160 allows ~2 % in the upper range
    volume_resolution_m3: float = 0.001  # one litre


class WaterMeters:
    """Water meters; with no flow given, draws arrive as a Poisson process per meter."""

    def __init__(
        self,
        n_meters: int,
        rng: np.random.Generator,
        params: WaterMeterParams | None = None,
        initial_volume_m3: float | np.ndarray = 0.0,
    ) -> None:
        self.n_meters = int(n_meters)
        self.params = params or WaterMeterParams()
        self.rng = rng
        self.volume_m3 = _as_array(initial_volume_m3, self.n_meters)
        self.draw_left_s = np.zeros(self.n_meters)
        self.draw_flow_m3h = np.zeros(self.n_meters)

    def _draws(self, dt_s: float, activity: np.ndarray) -> np.ndarray:
        """Mean flow over the step from ongoing and newly started draws, m3/h."""
        p = self.params
        idle = self.draw_left_s <= 0
        p_start = -np.expm1(-p.draws_per_hour * activity * dt_s / 3600.0)
        start = idle & (self.rng.random(self.n_meters) < p_start)
        n_new = int(start.sum())
        mu = np.log(p.mean_draw_s) - 0.5 * p.draw_sigma**2
        offset = np.zeros(self.n_meters)
        offset[start] = self.rng.random(n_new) * dt_s  # draw begins part-way through the step
        self.draw_left_s[start] = self.rng.lognormal(mu, p.draw_sigma, n_new)
        self.draw_flow_m3h[start] = self.rng.uniform(p.flow_min_m3h, p.flow_max_m3h, n_new)
        active_s = np.clip(np.minimum(self.draw_left_s, dt_s - offset), 0.0, None)
        self.draw_left_s = np.maximum(self.draw_left_s - active_s, 0.0)
        return self.draw_flow_m3h * active_s / dt_s

    def step(
        self, dt_s: float, flow_m3h: np.ndarray | None = None, activity: float | np.ndarray = 1.0
    ) -> dict[str, np.ndarray]:
        """Advance by ``dt_s``; ``flow_m3h`` overrides the draw model, ``activity`` scales the draw rate."""
        p = self.params
        if flow_m3h is None:
            flow = self._draws(dt_s, _as_array(activity, self.n_meters))
        else:
            flow = np.maximum(np.asarray(flow_m3h, dtype=float), 0.0)
        self.volume_m3 += flow * dt_s / 3600.0
        noisy = np.maximum(flow * (1.0 + p.flow_noise_rel * self.rng.standard_normal(self.n_meters)), 0.0)
        return {
            Quantity.WATER_VOLUME: _truncate(self.volume_m3, p.volume_resolution_m3),
            Quantity.WATER_FLOWRATE: noisy,
        }


@dataclass(frozen=True)
class GasMeterParams:
    """A diaphragm gas meter; volume from the appliances' gas heat input."""

    calorific_value_wh_m3: float = 10_550.0  # natural gas, gross, ~38 MJ/m3
    volume_resolution_m3: float = 0.001


class GasMeters:
    """Gas meters driven by the gas heat input (W) of each household's appliances."""

    def __init__(
        self, n_meters: int, params: GasMeterParams | None = None, initial_volume_m3: float | np.ndarray = 0.0
    ) -> None:
        self.n_meters = int(n_meters)
        self.params = params or GasMeterParams()
        self.volume_m3 = _as_array(initial_volume_m3, self.n_meters)

    def step(self, dt_s: float, gas_power_w: np.ndarray) -> dict[str, np.ndarray]:
        """Advance by ``dt_s`` at the given gas heat input and return the register."""
        power = np.maximum(np.asarray(gas_power_w, dtype=float), 0.0)
        self.volume_m3 += power * dt_s / J_PER_WH / self.params.calorific_value_wh_m3
        return {Quantity.GAS_VOLUME: _truncate(self.volume_m3, self.params.volume_resolution_m3)}
