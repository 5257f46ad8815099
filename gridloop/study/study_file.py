"""A study file: the scenario a study runs, what it changes in it, what it sweeps and how it paces the points.

```yaml
study:
  scenario: demand-response-hyllie.yaml   # relative to this file
  services: true                          # keep the scenario's events and services in the loop
  realtime: true
  speed: 10
  set: {clock.duration: 10min}           # scenario fields changed for every point
  sweep: {homes: [636, 3180], interval: [1min, 10s], partitions: [1, 2]}
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gridloop.study.sweep import StudyError

Scalar = str | int | float | bool


class StudySection(BaseModel):
    """The ``study:`` section of a study file."""

    model_config = ConfigDict(extra="forbid")
    scenario: str = Field(description="the scenario file, relative to the study file")
    services: bool = Field(False, description="run the scenario's services and events in every point")
    realtime: bool = False
    speed: float | None = Field(None, gt=0, description="with realtime: simulated seconds per wall second")
    max_wall_s: float = Field(3600.0, gt=0, description="start no new point after this many seconds")
    set: dict[str, Scalar] = Field(default_factory=dict, description="dotted scenario fields set for every point")
    sweep: dict[str, list[Scalar]] = Field(default_factory=dict, description="key: values; every combination runs")


@dataclass(frozen=True)
class Study:
    """What `gridloop study` runs: the base scenario's data and the study's settings."""

    base: dict
    scenario_file: str
    sweeps: list[str]  # as --sweep would give them: key=v1,v2
    services: bool = False
    realtime: bool = False
    speed: float | None = None
    max_wall_s: float = 3600.0


def _set(data: dict, path: str, value: object, file: Path) -> None:
    node = data
    *parents, leaf = path.split(".")
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise StudyError(f"{file}: study.set: {path}: {p} is not a section of the scenario")
    node[leaf] = value


def _text(value: Scalar) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StudyError(f"{path}: cannot read it: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise StudyError(f"{path}: not valid YAML: {exc}") from None


def load_study(path: Path) -> Study:
    """A study file (top-level ``study:``) or a plain scenario file (a study of it with no sweep)."""
    data = _yaml(path)
    if not isinstance(data, dict):
        raise StudyError(f"{path}: expected a scenario or a study file (a mapping), got {type(data).__name__}")
    if "study" not in data:
        return Study(data, str(path), [])
    if set(data) != {"study"}:
        extra = ", ".join(sorted(set(data) - {"study"}))
        raise StudyError(f"{path}: a study file holds only its study: section (found also {extra}); "
                         "scenario fields go in study.set or in the scenario file")
    try:
        section = StudySection.model_validate(data["study"])
    except ValidationError as exc:
        problems = "; ".join(f"study.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise StudyError(f"{path}: {problems}") from None
    scenario_path = (path.parent / section.scenario).resolve()
    base = _yaml(scenario_path)
    if not isinstance(base, dict):
        raise StudyError(f"{path}: study.scenario {section.scenario} is not a scenario file")
    for field, value in section.set.items():
        _set(base, field, value, path)
    sweeps = [f"{key}={','.join(_text(v) for v in values)}" for key, values in section.sweep.items()]
    return Study(base, str(scenario_path), sweeps, section.services, section.realtime, section.speed,
                 section.max_wall_s)
