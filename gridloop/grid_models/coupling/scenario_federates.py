"""The MV federate of a coupled run (``grid.coupling: helics``) and the loopback broker it shares with the workers.

``gridloop run --workers N`` starts :class:`MvFederation` before its partitions: a HELICS broker on loopback
and, in its own process, the MV federate (:func:`run_mv_scenario`), which builds the scenario's whole net as
every partition does, solves the MV grid at the odd slots of each step with the LV substations' P + jQ, and
publishes their MV bus voltages. Each partition's grid stage is an LV federate (``lv_solver``).
"""

from __future__ import annotations

import cmath
import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import helics as h
import numpy as np
import pandapower as pp

from gridloop.grid_models.coupling.federates import (
    POWER_KEY,
    SLACK_KEY,
    FederateReport,
    _at,
    _federate,
    _finish,
    _publisher,
    create_broker,
    slot_time,
)
from gridloop.grid_models.coupling.split import split_at_substations
from gridloop.grid_models.pgm_solver import PgmSolver
from gridloop.scenario.model import Scenario


def scenario_net(s: Scenario) -> pp.pandapowerNet:
    """The scenario's whole net as each partition's grid stage builds it (tap changers declared likewise)."""
    from gridloop.grid_models.grid_stage import _declare_ratio_tap_changers
    from gridloop.grid_models.networks import grid_network

    net = grid_network(s.grid, s.seed)
    if s.grid.tap_control is not None:
        _declare_ratio_tap_changers(net)
    return net


class _MvDrive:
    """The MV grid's own loads and generators (SimBench MV+LV), driven by the scenario's demand as in one net."""

    def __init__(self, s: Scenario, net: pp.pandapowerNet, mv: pp.pandapowerNet, own_loads: np.ndarray) -> None:
        from gridloop.profiles.demand import build_demand

        self.demand = build_demand(net, s.households, s.clock.start, int(s.clock.step * 1000), s.seed)
        self.own_loads = own_loads
        self.load_pos = net.load.index.get_indexer(mv.load.index[own_loads])
        self.sgen_pos = net.sgen.index.get_indexer(mv.sgen.index)

    def apply(self, t_s: float, p: np.ndarray, q: np.ndarray, solver: PgmSolver) -> None:
        p_all, q_all = self.demand.at(t_s)
        p[self.own_loads], q[self.own_loads] = p_all[self.load_pos], q_all[self.load_pos]
        feed = self.demand.generation_at(t_s)
        if feed is not None and self.sgen_pos.size:
            solver.set_sgens(feed[self.sgen_pos], np.zeros(self.sgen_pos.size))


def run_mv_scenario(s: Scenario, broker_address: str, n_steps: int, sweeps: int = 2) -> FederateReport:
    """The MV federate of a coupled run: substation P + jQ in, MV bus voltages out, ``n_steps`` HELICS steps."""
    net = scenario_net(s)
    split = split_at_substations(net, lv_nets=())
    mv = split.mv_net
    if s.grid.tap_control is not None and len(mv.trafo) and (mv.trafo.tap_max != mv.trafo.tap_min).any():
        raise ValueError("grid.coupling: helics with grid.tap_control: the MV federate does not control the "
                         "tap changers of the MV grid's own transformers; leave tap_control unset for this net")
    solver = PgmSolver(mv, slack_control=True)
    sub_load = mv.load.index.get_indexer([sub.mv_load for sub in split.substations])
    own_loads = np.setdiff1d(np.arange(len(mv.load)), sub_load)
    drive = _MvDrive(s, net, mv, own_loads) if own_loads.size or len(mv.sgen) else None
    bus = mv.bus.index.get_indexer([sub.mv_bus for sub in split.substations])
    p, q = mv.load.p_mw.to_numpy(dtype=float).copy(), mv.load.q_mvar.to_numpy(dtype=float).copy()
    fed = _federate("mv", broker_address)
    power_in = [h.helicsFederateRegisterSubscription(fed, POWER_KEY.format(sub.trafo), "MW")
                for sub in split.substations]
    for sub_in in power_in:
        h.helicsInputSetDefaultComplex(sub_in, 0.0, 0.0)
    slack_out = [_publisher(fed, SLACK_KEY.format(sub.trafo), "pu") for sub in split.substations]
    # keyed by the bus's position in the whole net (the recorded series' column), not its label
    report = FederateReport("mv", vm_pu={int(b): [] for b in net.bus.index.get_indexer(mv.bus.index)})
    h.helicsFederateEnterExecutingMode(fed)
    try:
        for k in range(n_steps):
            t0 = time.perf_counter()
            if drive is not None:
                drive.apply(k * s.clock.step, p, q, solver)
            for sweep in range(sweeps):
                _at(fed, slot_time(k, 2 * sweep + 1))
                for i, sub_in in enumerate(power_in):
                    power = complex(h.helicsInputGetComplex(sub_in))
                    p[sub_load[i]], q[sub_load[i]] = power.real, power.imag
                solver.set_loads(p, q)
                vm = solver.solve().bus_vm_pu
                u = solver.bus_voltage()[bus]
                for pub, v in zip(slack_out, u, strict=True):
                    pub.offer(cmath.rect(abs(v), cmath.phase(v)))
            report.step_s.append(time.perf_counter() - t0)
            report.residual.append(max((pub.moved for pub in slack_out), default=0.0))
            for series, v in zip(report.vm_pu.values(), vm, strict=True):
                series.append(float(v))
    finally:
        _finish(fed)
    return report


class MvFederation:
    """A loopback HELICS broker for ``workers`` LV federates plus the MV federate, which runs in its own process
    (``python -m gridloop.grid_models.coupling.scenario_federates``; its report lands in ``mv-federate.json``)."""

    def __init__(self, s: Scenario, workers: int, n_steps: int, run_dir: Path, sweeps: int = 2) -> None:
        self._broker, self.address = create_broker("gridloop-run", workers + 1)
        scenario = run_dir / "mv-federate-scenario.json"
        scenario.write_text(s.redacted_json())
        self.report, self.log = run_dir / "mv-federate.json", run_dir / "mv-federate.log"
        self.report.unlink(missing_ok=True)
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", __name__, str(scenario), self.address, str(n_steps), str(sweeps),
                 str(self.report)], stdout=log, stderr=log)

    def failed(self) -> str | None:
        """Why the MV federate failed, if it already has (checked while the partitions run)."""
        code = self._proc.poll()
        if code is None or code == 0:
            return None
        return f"MV federate exited with {code}: " + self.log.read_text(errors="replace")[-2000:]

    def result(self, timeout_s: float = 60.0) -> FederateReport:
        self._proc.wait(timeout=timeout_s)
        problem = self.failed()
        if problem:
            raise RuntimeError(problem)
        return FederateReport(**json.loads(self.report.read_text()))

    def close(self) -> None:
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        h.helicsBrokerDisconnect(self._broker)
        h.helicsBrokerFree(self._broker)


def main(argv: list[str] | None = None) -> None:
    scenario, address, n_steps, sweeps, out = argv or sys.argv[1:]
    s = Scenario.model_validate_json(Path(scenario).read_text())
    report = run_mv_scenario(s, address, int(n_steps), int(sweeps))
    Path(out).write_text(json.dumps(asdict(report), indent=1))


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    main()
