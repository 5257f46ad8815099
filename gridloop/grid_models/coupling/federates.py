"""The MV federate and the LV partition federates: HELICS value federates, iterating each step to a tolerance.

Per LV substation (transformer ``t``) two complex values travel:

- ``substation-<t>/power``: P + jQ in MW/Mvar at the transformer's MV terminal, published by the LV partition
  owning ``t``, subscribed by the MV federate;
- ``substation-<t>/slack``: the MV bus voltage as vm·e^(j·va) (pu, radians), published by the MV federate,
  subscribed by that LV partition.

Step ``k`` spans HELICS time [k + 1, k + 2); within it, time slots of ``SLOT_S`` order a fixed number of
Gauss-Seidel sweeps: the LV partitions solve at the even slots (k + 1, k + 1 + 2·SLOT_S, ...) and publish P/Q,
the MV federate solves at the odd slots and publishes slack voltages, and a last LV solve takes the final
voltages.  A HELICS time grant guarantees every value published at an earlier time has arrived, so the order
(and thus the result) is the same for any number of partitions and any machine timing: same-step iteration,
no lag.  (HELICS's own iterative requests, ``helicsFederateRequestTimeIterative``, were tried first: with
``ITERATE_IF_NEEDED`` the MV federate moved on before the LV values arrived, and ``FORCE_ITERATION`` rounds do
not order reads against writes, so results varied with N and timing.)
"""

from __future__ import annotations

import cmath
from dataclasses import dataclass, field

import helics as h
import numpy as np

from gridloop.broker import free_port
from gridloop.grid_models.coupling.split import LvSubstation, set_slack, solve, split_at_substations, substation_power
from gridloop.grid_models.feeders import generate_district

POWER_KEY = "substation-{}/power"
SLACK_KEY = "substation-{}/slack"
SLOT_S = 1e-3  # one half-sweep; a step holds at most 1 / SLOT_S / 2 sweeps


@dataclass(frozen=True)
class CouplingCase:
    """A seeded district and its per-step load variation; every federate rebuilds the same case from it."""

    n_substations: int = 4
    n_feeders: int = 2
    homes_per_feeder: int = 5
    seed: int = 0
    n_steps: int = 5
    load_spread: float = 0.6  # each step, each home's demand is its base times U(1 - spread, 1 + spread)
    sweeps: int = 2  # Gauss-Seidel sweeps per step (LV solve, MV solve); see docs/scale-out.md

    def net(self):
        return generate_district(self.n_substations, self.n_feeders, self.homes_per_feeder, seed=self.seed)

    def load_factors(self, n_load: int) -> np.ndarray:
        """(n_steps, n_load) demand factors over the whole net's loads, the same for any partitioning."""
        rng = np.random.default_rng([self.seed, 1])
        return rng.uniform(1 - self.load_spread, 1 + self.load_spread, size=(self.n_steps, n_load))


@dataclass
class FederateReport:
    name: str
    residual: list[float] = field(default_factory=list)  # per step: last sweep's largest change
    vm_pu: dict[int, list[float]] = field(default_factory=dict)  # bus (whole-net index) -> vm per step
    step_s: list[float] = field(default_factory=list)


# Single-socket ZeroMQ: only the broker binds a port and every federate connects out to it. With "zmq" each core
# also binds a port the broker hands out next to its own, which on a busy machine (parallel tests, clients' ephemeral
# ports) can already be taken: the federate then fails to register. One port is also what crosses a firewall.
# ("tcp_ss" binds one port too, but its broker dropped a registration ack now and then, with a warning, before a
# retry went through.)
CORE_TYPE = "zmq_ss"


def create_broker(label: str, n_federates: int) -> tuple[h.HelicsBroker, str]:
    """A loopback broker for ``n_federates`` federates and the address they connect to."""
    port = free_port()
    broker = h.helicsCreateBroker(
        CORE_TYPE, f"{label}-{port}", f"-f {n_federates} --local_interface=127.0.0.1 --port={port}")
    return broker, f"127.0.0.1:{port}"


def broker_core_init(address: str) -> str:
    return f"--federates=1 --broker_address={address} --local_interface=127.0.0.1"


def _federate(name: str, broker_address: str) -> h.HelicsFederate:
    info = h.helicsCreateFederateInfo()
    h.helicsFederateInfoSetCoreTypeFromString(info, CORE_TYPE)
    h.helicsFederateInfoSetCoreInitString(info, broker_core_init(broker_address))
    # a grant never comes early on an arriving value: each federate runs exactly its own slots
    h.helicsFederateInfoSetFlagOption(info, h.HELICS_FLAG_UNINTERRUPTIBLE, True)
    fed = h.helicsCreateValueFederate(name, info)
    h.helicsFederateInfoFree(info)
    return fed


class _Publisher:
    """Publishes a complex value every iteration and remembers how far it moved since the last one."""

    def __init__(self, pub: h.HelicsPublication) -> None:
        self.pub, self.sent, self.moved = pub, None, float("inf")

    def offer(self, value: complex, send: bool = True) -> None:
        self.moved = float("inf") if self.sent is None else abs(value - self.sent)
        if send:
            h.helicsPublicationPublishComplex(self.pub, value.real, value.imag)
        self.sent = value


def _publisher(fed: h.HelicsFederate, key: str, units: str) -> _Publisher:
    return _Publisher(h.helicsFederateRegisterGlobalPublication(fed, key, h.HELICS_DATA_TYPE_COMPLEX, units))


def slot_time(step: int, slot: int) -> float:
    """HELICS time of slot ``slot`` of step ``step``: even slots are LV solves, odd slots MV solves."""
    return step + 1 + slot * SLOT_S


def _at(fed: h.HelicsFederate, time_s: float) -> None:
    granted = h.helicsFederateRequestTime(fed, time_s)
    if abs(granted - time_s) > SLOT_S / 10:
        raise RuntimeError(f"granted {granted} s, asked {time_s} s")


def _finish(fed: h.HelicsFederate) -> None:
    h.helicsFederateDisconnect(fed)
    h.helicsFederateFree(fed)


def run_mv_federate(case: CouplingCase, broker_address: str) -> FederateReport:
    """The MV solver: substation loads in, slack voltages out."""
    import time

    split = split_at_substations(case.net())
    mv = split.mv_net
    fed = _federate("mv", broker_address)
    power_in = {
        s.trafo: h.helicsFederateRegisterSubscription(fed, POWER_KEY.format(s.trafo), "MW") for s in split.substations
    }
    for sub in power_in.values():
        h.helicsInputSetDefaultComplex(sub, 0.0, 0.0)
    slack_out = {s.trafo: _publisher(fed, SLACK_KEY.format(s.trafo), "pu") for s in split.substations}
    report = FederateReport("mv", vm_pu={int(b): [] for b in mv.bus.index})

    def solve_and_publish() -> None:
        for s in split.substations:
            power = complex(h.helicsInputGetComplex(power_in[s.trafo]))
            mv.load.at[s.mv_load, "p_mw"], mv.load.at[s.mv_load, "q_mvar"] = power.real, power.imag
        solve(mv)
        for s in split.substations:
            vm, va = mv.res_bus.vm_pu.at[s.mv_bus], mv.res_bus.va_degree.at[s.mv_bus]
            slack_out[s.trafo].offer(cmath.rect(vm, np.deg2rad(va)))

    h.helicsFederateEnterExecutingMode(fed)
    for k in range(case.n_steps):
        t0 = time.perf_counter()
        for sweep in range(case.sweeps):
            _at(fed, slot_time(k, 2 * sweep + 1))
            solve_and_publish()
        report.step_s.append(time.perf_counter() - t0)
        report.residual.append(max(p.moved for p in slack_out.values()))
        for b, series in report.vm_pu.items():
            series.append(float(mv.res_bus.vm_pu.at[b]))
    _finish(fed)
    return report


def _set_step_loads(lv: LvSubstation, base: tuple[np.ndarray, np.ndarray], factors: np.ndarray) -> None:
    idx = lv.load_index
    lv.net.load.loc[idx, "p_mw"] = base[0][idx] * factors[idx]
    lv.net.load.loc[idx, "q_mvar"] = base[1][idx] * factors[idx]


def run_lv_federate(case: CouplingCase, trafos: list[int], broker_address: str, name: str) -> FederateReport:
    """An LV partition: solves its substations from the MV slack voltages, publishes their P/Q."""
    import time

    net = case.net()
    base = (net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy())  # load index == position in generate_district
    factors = case.load_factors(len(net.load))
    split = split_at_substations(net)
    owned = [split.substation(t) for t in trafos]
    fed = _federate(name, broker_address)
    slack_in = {}
    for s in owned:
        slack_in[s.trafo] = h.helicsFederateRegisterSubscription(fed, SLACK_KEY.format(s.trafo), "pu")
        h.helicsInputSetDefaultComplex(slack_in[s.trafo], 1.0, 0.0)
    power_out = {s.trafo: _publisher(fed, POWER_KEY.format(s.trafo), "MW") for s in owned}
    report = FederateReport(name, vm_pu={int(b): [] for s in owned for b in s.net.bus.index if b != s.mv_bus})

    def solve_and_publish(send: bool = True) -> None:
        for s in owned:
            v = complex(h.helicsInputGetComplex(slack_in[s.trafo]))
            set_slack(s, abs(v), float(np.rad2deg(cmath.phase(v))))
            solve(s.net)
            power_out[s.trafo].offer(substation_power(s), send)

    h.helicsFederateEnterExecutingMode(fed)
    for k in range(case.n_steps):
        t0 = time.perf_counter()
        for s in owned:
            _set_step_loads(s, base, factors[k])
        for sweep in range(case.sweeps + 1):  # the last solve takes the final slack voltages
            _at(fed, slot_time(k, 2 * sweep))
            solve_and_publish(send=sweep < case.sweeps)
        report.step_s.append(time.perf_counter() - t0)
        report.residual.append(max(p.moved for p in power_out.values()))
        for s in owned:
            for b in s.net.bus.index:
                if b != s.mv_bus:
                    report.vm_pu[int(b)].append(float(s.net.res_bus.vm_pu.at[b]))
    _finish(fed)
    return report
