"""What the adapters share: the scenario a simulator is started for, and mosaik time on gridloop's clock."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gridloop.scenario.loader import load_scenario
from gridloop.scenario.model import Scenario
from gridloop.stage import ms

API_VERSION = "3.0"


def scenario_of(scenario: str | Path | Scenario, seed: int | None = None) -> Scenario:
    """A scenario file (or a loaded one), with ``seed`` overriding its own when given."""
    s = scenario if isinstance(scenario, Scenario) else load_scenario(Path(scenario))
    return s if seed is None else s.model_copy(update={"seed": seed})


@dataclass(frozen=True)
class SimClock:
    """mosaik's integer time in units of ``time_resolution`` seconds, as gridloop's milliseconds."""

    time_resolution: float
    step_s: float

    @property
    def step_size(self) -> int:
        """One gridloop step in mosaik time units."""
        size = round(self.step_s / self.time_resolution)
        if size < 1 or abs(size * self.time_resolution - self.step_s) > 1e-9:
            raise ValueError(f"step of {self.step_s} s is not a whole number of time_resolution "
                             f"({self.time_resolution} s)")
        return size

    @property
    def period_ms(self) -> int:
        return ms(self.step_s)

    def now_ms(self, time: int) -> int:
        return ms(time * self.time_resolution)


def entity(eid: str, model: str, children: list[dict] | None = None, **extra_info: object) -> dict:
    """One entity of create()'s answer; ``extra_info`` tells the scenario which gridloop element it is."""
    out: dict = {"eid": eid, "type": model}
    if children is not None:
        out["children"] = children
    if extra_info:
        out["extra_info"] = extra_info
    return out
