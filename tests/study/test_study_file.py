"""Study files: the scenario, the changes, the sweep and the pacing of a study, with errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridloop.cli import main
from gridloop.study.study_file import load_study
from gridloop.study.sweep import expand, parse_sweeps

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_dr_study_expands_to_its_twelve_points_with_the_service() -> None:
    study = load_study(ROOT / "scenarios" / "study-dr-scale.yaml")
    assert study.services and study.realtime and study.speed == 10
    points = expand(study.base, parse_sweeps(study.sweeps), study.scenario_file, study.services)
    assert len(points) == 12
    assert {p.scenario.grid.substations for p in points} == {2, 10, 20}
    assert {p.scenario.clock.step for p in points} == {60.0, 10.0}  # the step follows a shorter interval
    assert {p.partitions for p in points} == {1, 2}
    assert all(p.scenario.clock.duration == 900 and p.scenario.services for p in points)
    assert points[0].scenario.clock.start.hour == 17 and points[0].scenario.clock.start.minute == 30


@pytest.mark.parametrize(("text", "message"), [
    ("study: {scenario: quick.yaml, sweep: {homes: [1]}, pace: 3}", "study.pace: Extra inputs are not permitted"),
    ("study: {scenario: quick.yaml, speed: -1}", "study.speed: Input should be greater than 0"),
    ("study: {scenario: quick.yaml}\nname: x", "holds only its study: section (found also name)"),
    ("study: {scenario: missing.yaml}", "missing.yaml: cannot read it"),
    ("study: {scenario: quick.yaml, set: {seed.value: 3}}", "study.set: seed.value: seed is not a section"),
])
def test_a_bad_study_file_names_the_file_and_field(tmp_path: Path, capsys, text: str, message: str) -> None:
    (tmp_path / "quick.yaml").write_text((ROOT / "scenarios" / "quickstart.yaml").read_text())
    path = tmp_path / "study.yaml"
    path.write_text(text)
    assert main(["study", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert message in err and ("study.yaml" in err or "missing.yaml" in err)
    assert not (tmp_path / "out" / "table.csv").exists()


def test_the_command_line_sweep_replaces_the_files_values_of_that_key(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(f"study: {{scenario: {ROOT / 'scenarios' / 'quickstart.yaml'}, sweep: {{meters: [10, 20]}},"
                    " set: {clock.duration: 30min}}")
    study = load_study(path)
    sweeps = parse_sweeps(study.sweeps)
    sweeps.update(parse_sweeps(["meters=30"]))
    points = expand(study.base, sweeps, study.scenario_file)
    assert [p.label for p in points] == ["meters=30"] and points[0].scenario.clock.duration == 1800
