"""grid.coupling: helics: a district split by LV substation over the partitions of ``gridloop run --workers N``.

Real HELICS broker on loopback, real Mosquitto (the run's own) and platform: the readings stored for 1 and 2
partitions are identical, and every bus voltage agrees with the uncoupled whole-net solve in one process.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridloop.engine.run import RunOptions
from gridloop.engine.substation_unit import build_unit
from gridloop.engine.workers import run_workers
from gridloop.scenario.loader import ScenarioError, load_scenario
from gridloop.stage import Clock, ms
from tests.test_partitions import _stored

pytest.importorskip("helics")

DISTRICT = """\
name: coupled-district
seed: 5
clock: {start: "2026-01-15T17:00:00+01:00", duration: 6min, step: 1min}
grid:
  network: district
  substations: 4
  lv_types: [1-LV-rural1--0-sw, 1-LV-semiurb4--0-sw]
  mv: ring
  coupling: helics
meters: {interval: 1min}
outputs: {progress: false, plots: false}
"""
HOMES, STEPS = 70, 6


def _whole_net_vm(scenario) -> pd.DataFrame:
    """Reference: the same district uncoupled, one grid stage solving the whole net in this process."""
    s = scenario.model_copy(deep=True)
    s.grid.coupling = None
    unit = build_unit(s, 0)
    period = ms(s.clock.step)
    rows = [unit.grid.step(Clock(k * period, period), {}).state.bus_vm_pu.copy() for k in range(STEPS)]
    return pd.DataFrame(np.vstack(rows), columns=unit.grid.bus_names)


def _coupled_vm(run_dir: Path, bus_names: list[str]) -> pd.DataFrame:
    """Every bus's voltage as the coupled run recorded it: LV partitions' series, the MV federate's report."""
    vm = pd.DataFrame(np.nan, index=range(STEPS), columns=bus_names)
    for part in sorted(p for p in run_dir.glob("part-*") if p.is_dir()):
        own = pd.read_parquet(part / "grid_bus_vm_pu.parquet").reset_index(drop=True)
        for col in own.columns[own.notna().all()]:
            assert vm[col].isna().all(), f"bus {col} solved by two partitions"
            vm[col] = own[col].to_numpy(dtype=float)
    mv = json.loads((run_dir / "mv-federate.json").read_text())
    for bus, series in mv["vm_pu"].items():
        name = bus_names[int(bus)]
        if vm[name].isna().all():
            vm[name] = series
    return vm


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_coupled_district_stores_the_same_readings_for_1_and_2_partitions(tmp_path):
    path = tmp_path / "district.yaml"
    path.write_text(DISTRICT)
    scenario = load_scenario(path)
    reference = _whole_net_vm(scenario)
    stored = {}
    for n in (1, 2):
        summary = run_workers(path, scenario, RunOptions(out=tmp_path / f"n{n}", progress=False), n)
        stored[n] = _stored(tmp_path / f"n{n}")
        assert summary.messages.readings_stored == summary.messages.readings_sampled == len(stored[n]), n
        assert len(summary.partitions) == n
        vm = _coupled_vm(tmp_path / f"n{n}", list(reference.columns))
        assert not vm.isna().any().any(), "some bus solved by no federate"
        # the series are float32: agreement down to their resolution (the measured gap is below it)
        assert float(np.abs(vm.to_numpy() - reference.to_numpy()).max()) <= 1e-6, n
        mv = json.loads((tmp_path / f"n{n}" / "mv-federate.json").read_text())
        assert len(mv["residual"]) == STEPS and max(mv["residual"]) < 1e-6
    assert len(stored[1]) == (HOMES + 4) * STEPS  # homes and the 4 substation meters every minute
    assert stored[1] == stored[2]
    # the second partition published the meters of its own two LV substations: its share is real
    shares = [p["readings_sampled"] for p in summary.partitions]
    assert all(share > 0 for share in shares) and sum(shares) == len(stored[1])


OTHER_NET = DISTRICT.replace("network: district", "network: 1-LV-urban6--0-sw")


@pytest.mark.parametrize(("text", "match"), [
    (OTHER_NET, r"grid\.coupling: helics splits a net at its MV/LV substations.*not '1-LV-urban6--0-sw'"),
    (DISTRICT.replace("  coupling:", "  backend: pandapower\n  coupling:"), r"grid\.backend is not supported"),
    (DISTRICT + "events: [{at: 1min, command: switch.open, device: sw1}]\n",
     r"grid\.coupling: helics does not run events"),
    (DISTRICT + "kpis: {transformer_limit_kw: 100}\n", r"leave kpis\.transformer_limit_kw unset with grid\.coupling"),
])
def test_coupling_is_refused_where_it_cannot_run(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=match):
        load_scenario(path)


def test_more_coupled_partitions_than_lv_substations_is_refused(tmp_path):
    path = tmp_path / "district.yaml"
    path.write_text(DISTRICT)
    with pytest.raises(ValueError, match="5 partitions for 4 LV substations"):
        run_workers(path, load_scenario(path), RunOptions(out=tmp_path / "x", progress=False), 5)


def test_a_coupled_scenario_without_its_broker_is_refused(tmp_path):
    from gridloop.engine.run import run_scenario

    path = tmp_path / "district.yaml"
    path.write_text(DISTRICT)
    with pytest.raises(ValueError, match=r"grid\.coupling: helics runs through gridloop run"):
        run_scenario(load_scenario(path), RunOptions(out=tmp_path / "x", progress=False))
