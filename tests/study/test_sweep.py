"""Sweep parsing and expansion onto scenario fields, with clear errors for what cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gridloop.study.history import queried_meter
from gridloop.study.sweep import KEYS, StudyError, apply_point, expand, household_capacity, parse_sweeps

ROOT = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())


def test_parse_sweeps_splits_values() -> None:
    assert parse_sweeps(["meters=1000, 10000", "interval=1s,10s,30s"]) == {
        "meters": ["1000", "10000"], "interval": ["1s", "10s", "30s"]}


@pytest.mark.parametrize(("spec", "message"), [
    ("metres=10", "unknown key 'metres'; known keys: meters"),
    ("meters", "write key=v1,v2"),
    ("meters=", "write key=v1,v2"),
    ("meters=ten", "'ten' is not valid"),
    ("meters=0", "'0' is not valid"),
    ("interval=fast", "'fast' is not valid"),
])
def test_bad_sweeps_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(StudyError, match=message):
        parse_sweeps([spec])


def test_a_key_given_twice_is_refused() -> None:
    with pytest.raises(StudyError, match="given twice"):
        parse_sweeps(["meters=1", "meters=2"])


def test_expansion_is_the_cartesian_product_first_key_slowest() -> None:
    points = expand(BASE, parse_sweeps(["meters=10,20", "interval=1min,5min", "duration=30min"]))
    assert [p.label for p in points] == [
        "meters=10,interval=1min,duration=30min", "meters=10,interval=5min,duration=30min",
        "meters=20,interval=1min,duration=30min", "meters=20,interval=5min,duration=30min"]
    p = points[1].scenario
    assert (p.households.count, p.meters.interval, p.clock.duration) == (10, 300.0, 1800.0)
    assert p.events == [] and p.services == []  # a study measures the reading path only
    assert not (p.outputs.series or p.outputs.plots or p.outputs.progress)


def test_meters_beyond_the_grids_households_become_water_meters() -> None:
    homes = household_capacity(BASE["grid"], BASE["seed"])
    assert homes == 102  # 1-LV-urban6's homes
    s = apply_point(BASE, {"meters": str(homes + 500), "interval": "10s"}).scenario
    assert s.households.count == homes
    assert (s.meters.utility.water_meters, s.meters.utility.water_interval) == (500, 10.0)
    assert s.clock.step == 10.0  # the step shrinks to the interval so that every meter samples on time


def test_mapped_fields_and_study_options() -> None:
    p = apply_point(BASE, {"link": "rf_mesh", "dia_batch": "100", "ingest_workers": "2", "step": "30s",
                           "interval": "1min", "network": "1-LV-rural1--0-sw"})
    s = p.scenario
    assert (s.meters.link.technology, s.meters.dia_batch, s.clock.step, s.grid.network) == (
        "rf_mesh", 100, 30.0, "1-LV-rural1--0-sw")
    assert p.ingest_workers == 2
    assert set(KEYS) >= {"meters", "interval", "step", "duration", "link", "ingest_workers"}


def test_gateways_sweep_sets_the_links_cells_and_keeps_the_rest_of_the_link() -> None:
    base = yaml.safe_load((ROOT / "scenarios" / "pilot-rf-mesh.yaml").read_text())
    points = expand(base, parse_sweeps(["interval=5s,10s", "gateways=3,6"]))
    assert [(p.scenario.meters.interval, p.scenario.meters.link.gateways) for p in points] == [
        (5.0, 3), (5.0, 6), (10.0, 3), (10.0, 6)]
    link = points[-1].scenario.meters.link
    assert (link.technology, link.profile, link.buffering) == ("rf_mesh", "field", False)
    assert points[0].scenario.clock.step == 5.0
    assert queried_meter(points[0].scenario)[0] == "m00001"  # every home has a meter, no water meters
    with pytest.raises(StudyError, match=r"--sweep gateways: '0' is not valid"):
        parse_sweeps(["gateways=3,0"])


def test_a_point_the_scenario_model_refuses_names_the_point_and_field() -> None:
    with pytest.raises(StudyError, match=r"point link=carrier-pigeon is not a valid scenario:\n.*meters\.link"):
        apply_point(BASE, {"link": "carrier-pigeon"})
    with pytest.raises(StudyError, match=r"clock\.step"):
        apply_point(BASE, {"interval": "1min", "step": "7s"})


def test_a_district_counts_the_homes_of_all_its_substations() -> None:
    district = {**BASE, "grid": {"network": "district", "substations": 2, "lv_types": ["1-LV-urban6--0-sw"]}}
    assert household_capacity(district["grid"], 1) == 2 * 102
    s = apply_point(district, {"meters": "300"}).scenario
    assert (s.households.count, s.meters.utility.water_meters) == (204, 96)


def test_homes_are_whole_copies_of_the_network_and_partitions_a_study_option() -> None:
    base = yaml.safe_load((ROOT / "scenarios" / "demand-response-hyllie.yaml").read_text())
    points = expand(base, parse_sweeps(["homes=636,700", "partitions=2"]), "dr.yaml", services=True)
    assert [(p.scenario.grid.substations, p.scenario.households.count, p.partitions) for p in points] == \
        [(2, 318, 2), (3, 234, 2)]  # 318 apartments in one Hyllie substation
    assert points[0].scenario.services and points[0].scenario.services[0].name == "demand_response"
    assert not expand(base, parse_sweeps(["homes=636"]), "dr.yaml")[0].scenario.services  # a pure load test


def test_more_partitions_than_substations_is_refused_naming_the_point() -> None:
    base = yaml.safe_load((ROOT / "scenarios" / "demand-response-hyllie.yaml").read_text())
    with pytest.raises(StudyError, match=r"point homes=318,partitions=2: 2 partitions for 1 substation"):
        expand(base, parse_sweeps(["homes=318", "partitions=2"]), "dr.yaml")
