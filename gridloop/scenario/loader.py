"""Read a scenario YAML file and report every problem at once, with file, field path and reason."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from gridloop.scenario.model import Scenario


@dataclass(frozen=True)
class ScenarioProblem:
    """One mistake in a scenario file."""

    file: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.reason}"


class ScenarioError(Exception):
    """A scenario file that cannot run; holds every problem found."""

    def __init__(self, problems: list[ScenarioProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# pydantic puts the union's tag into the location
EVENT_TAGS = ("command", "fault", "link_outage", "link_degradation", "outage", "broker_outage", "meter_fault")


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for i, part in enumerate(loc):
        if i >= 2 and loc[i - 2] == "events" and isinstance(loc[i - 1], int) and part in EVENT_TAGS:
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-", "literal[", "float", "int", "str", "constrained-str")):
            continue  # pydantic's internal union branch labels say nothing to a user
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def parse_scenario(data: object, file: str) -> Scenario:
    """Validate already-parsed YAML data; raises ScenarioError listing all problems."""
    if not isinstance(data, dict):
        raise ScenarioError([ScenarioProblem(file, "(top level)", "a scenario is a mapping of fields")])
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems: list[ScenarioProblem] = []
        seen: set[tuple[str, str]] = set()
        for err in exc.errors():
            field = _field_path(err["loc"])
            reason = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                reason = "unknown field (check the spelling)"
            if (field, reason) not in seen:
                seen.add((field, reason))
                problems.append(ScenarioProblem(file, field, reason))
        raise ScenarioError(problems) from None


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([ScenarioProblem(file, "(file)", exc.strerror or str(exc))]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ScenarioError([ScenarioProblem(file, where, f"not valid YAML: {exc}")]) from None
    return parse_scenario(data, file)
