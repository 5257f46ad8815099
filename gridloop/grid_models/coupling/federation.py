"""Start a loopback HELICS broker and the MV + K LV partition federates, one process each."""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass

import helics as h
import numpy as np

from gridloop.grid_models.coupling.federates import (
    CouplingCase,
    FederateReport,
    create_broker,
    run_lv_federate,
    run_mv_federate,
)
from gridloop.grid_models.coupling.split import solve

BROKER_TIMEOUT_MS = 20_000


@dataclass(frozen=True)
class CoupledRun:
    reports: tuple[FederateReport, ...]  # MV first, then the LV partitions
    wall_s: float

    @property
    def mv(self) -> FederateReport:
        return self.reports[0]

    def lv_vm_pu(self) -> dict[int, np.ndarray]:
        """Every LV bus (whole-net index) -> its voltage per step."""
        return {b: np.asarray(v) for r in self.reports[1:] for b, v in r.vm_pu.items()}


def partition_substations(trafos: list[int], n_partitions: int) -> list[list[int]]:
    """Contiguous blocks of substations, as ``gridloop run --workers N`` splits substations."""
    return [list(block) for block in np.array_split(np.asarray(trafos, dtype=int), n_partitions) if block.size]


def _federate_main(role: str, case: CouplingCase, address: str, trafos: list[int], out: mp.Queue) -> None:
    try:
        if role == "mv":
            out.put(run_mv_federate(case, address))
        else:
            out.put(run_lv_federate(case, trafos, address, role))
    except Exception as exc:  # the parent must not wait forever on a federate that died
        out.put(exc)
        raise


def run_coupled(case: CouplingCase, n_partitions: int) -> CoupledRun:
    """One federation: broker in this process, MV federate and ``n_partitions`` LV federates in child processes."""
    from gridloop.grid_models.coupling.split import split_at_substations

    trafos = [s.trafo for s in split_at_substations(case.net()).substations]
    blocks = partition_substations(trafos, n_partitions)
    broker, address = create_broker("gridloop-mv", len(blocks) + 1)
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    roles = [("mv", [])] + [(f"lv-{i}", block) for i, block in enumerate(blocks)]
    t0 = time.perf_counter()
    procs = [ctx.Process(target=_federate_main, args=(role, case, address, trafos_, out)) for role, trafos_ in roles]
    for p in procs:
        p.start()
    try:
        got = [out.get(timeout=BROKER_TIMEOUT_MS / 1000) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
        h.helicsBrokerWaitForDisconnect(broker, 5000)
        h.helicsBrokerDisconnect(broker)
        h.helicsBrokerFree(broker)
    wall = time.perf_counter() - t0
    errors = [g for g in got if isinstance(g, Exception)]
    if errors:
        raise RuntimeError(f"federate failed: {errors[0]!r}")
    by_name = {r.name: r for r in got}
    return CoupledRun(tuple(by_name[role] for role, _ in roles), wall)


def solve_whole(case: CouplingCase) -> tuple[dict[int, np.ndarray], list[float]]:
    """Reference: the whole MV+LV net in one process, same loads; bus -> vm per step, and solve times."""
    net = case.net()
    base_p, base_q = net.load.p_mw.to_numpy().copy(), net.load.q_mvar.to_numpy().copy()
    factors = case.load_factors(len(net.load))
    vm = np.empty((case.n_steps, len(net.bus)))
    times = []
    for k in range(case.n_steps):
        net.load["p_mw"], net.load["q_mvar"] = base_p * factors[k], base_q * factors[k]
        t0 = time.perf_counter()
        solve(net)
        times.append(time.perf_counter() - t0)
        vm[k] = net.res_bus.vm_pu.to_numpy()
    return {int(b): vm[:, i] for i, b in enumerate(net.bus.index)}, times
