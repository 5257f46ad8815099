"""The grid section's generated networks (district, feeders) and tap control, as a scenario file gives them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gridloop.cli import main
from gridloop.engine.run import RunOptions, run_scenario
from gridloop.grid_models.networks import grid_network
from gridloop.scenario.loader import ScenarioError, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"network": "district", "substations": 4, "lv_types": ["1-LV-rural1--0-sw", "1-LV-semiurb4--0-sw"]}


def _scenario(grid: dict, **over):
    data = {"name": "district", "seed": 3, "grid": grid, "meters": {"interval": "1min"},
            "clock": {"start": "2026-01-15T17:00:00+01:00", "duration": "3min", "step": "1min"},
            "outputs": {"progress": False, "plots": False}, **over}
    return parse_scenario(data, "test")


def test_validate_accepts_the_shipped_district_and_names_a_bad_lv_type(tmp_path, capsys) -> None:
    assert main(["validate", str(ROOT / "scenarios" / "district-40.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "scenarios" / "district-40.yaml").read_text().replace(
        "1-LV-semiurb5--0-sw", "1-LV-semiurb9--0-sw"))
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "grid.lv_types" in err and "lv_types[1]" in err and "'1-LV-semiurb9--0-sw'" in err
    assert "did you mean '1-LV-semiurb" in err and "rural1, rural2" in err


@pytest.mark.parametrize(("grid", "field"), [
    ({"network": "district", "lv_types": ["1-MV-rural--0-sw"]}, "grid.lv_types"),
    ({"network": "district", "mv": "mesh"}, "grid.mv"),
    ({"network": "feeders", "phase_skew": 1.5}, "grid.phase_skew"),
    ({"network": "feeders", "homes_per_feeder": 0}, "grid.homes_per_feeder"),
    ({"tap_control": {"deadband_pu": 0.01}}, "grid.tap_control.deadband_pu"),
    ({"tap_control": {"v_set": 1.0}}, "grid.tap_control.v_set"),
])
def test_bad_grid_fields_are_named(grid: dict, field: str) -> None:
    with pytest.raises(ScenarioError, match=field.replace(".", r"\.")):
        _scenario(grid)


def test_a_district_is_one_unit_and_feeders_take_their_fields() -> None:
    s = _scenario(SMALL, events=[{"at": "1min", "command": "switch.open", "device": "sw1"}])
    assert s.grid.copies == 1 and s.grid.substations == 4  # events are allowed: one net, not copies
    with pytest.raises(ScenarioError, match=r"events\[0\]\.substation: a district is one net .*leave it unset"):
        _scenario(SMALL, events=[{"at": "1min", "substation": 2, "command": "switch.open", "device": "sw1"}])
    copies = _scenario({"network": "1-LV-rural1--0-sw", "substations": 4})
    assert copies.grid.copies == 4
    net = grid_network(_scenario({"network": "feeders", "feeders": 2, "homes_per_feeder": 5,
                                  "phase_skew": 1.0}).grid, 3)
    assert len(net.load) == 10 and (net.load.phase == 0).all()  # skew 1: every home on L1


def test_small_district_runs_end_to_end_with_tap_control(platform, broker_uri, tmp_path) -> None:
    import httpx

    admin = {"Authorization": f"Bearer {platform.admin_key}"}
    key = httpx.post(f"{platform.url}/api/v1/tenants", json={"name": "lab"}, headers=admin).json()["api_key"]
    s = _scenario({**SMALL, "tap_control": {"v_set_pu": 1.06, "deadband_pu": 0.015}},
                  platform={"tenant": "lab", "broker": broker_uri, "api_url": platform.url, "api_key": key})
    summary = run_scenario(s, RunOptions(out=tmp_path))
    net = grid_network(s.grid, s.seed)
    homes = int(net.load.profile.str.startswith("H").sum())
    m = summary.messages
    assert m.readings_sampled == 3 * (homes + 4)  # every home and the 4 transformer meters, each step
    assert m.readings_stored == m.readings_published == m.readings_sampled and m.readings_lost == 0
    # the taps moved: a set point of 1.06 pu is above every busbar of the 1.02 pu feeder
    import pandas as pd

    vm = pd.read_parquet(tmp_path / "grid_bus_vm_pu.parquet")
    lv_busbars = [str(n) for n in net.bus.name[net.trafo.lv_bus]]
    assert np.all(vm[lv_busbars].iloc[-1].to_numpy() > vm[lv_busbars].iloc[0].to_numpy())


def test_shipped_district_scenario_loads() -> None:
    s = load_scenario(ROOT / "scenarios" / "district-40.yaml")
    assert s.grid.substations == 40 and s.grid.mv == "ring" and s.grid.backend == "pgm"
