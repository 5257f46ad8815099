"""`--sweep key=v1,v2` → study points: a table of known keys, each mapped onto scenario fields or study options."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from gridloop.scenario.loader import ScenarioError, parse_scenario
from gridloop.scenario.model import Scenario, parse_duration
from gridloop.study.history import check_plan, parse_history, plan_history


class StudyError(ValueError):
    """A sweep that cannot run: unknown key, bad value, or a point the scenario model refuses."""


@dataclass(frozen=True)
class SweepKey:
    """One sweepable parameter: how its text is parsed and what it sets."""

    name: str
    parse: Callable[[str], object]
    target: str  # the scenario field path it sets, or "study" for an option of the study itself
    help: str


def _positive_int(text: str) -> int:
    value = int(text.replace("_", ""))
    if value < 1:
        raise ValueError("must be a positive whole number")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be positive")
    return value


KEYS: dict[str, SweepKey] = {k.name: k for k in (
    SweepKey("meters", _positive_int, "households.count + meters.utility.water_meters",
             "meters in total: one per household load of the grid, the rest as water meters on the same interval"),
    SweepKey("households", _positive_int, "households.count", "household electricity meters (at most the grid's)"),
    SweepKey("homes", _positive_int, "grid.substations + households.count",
             "homes in total, as whole copies of the scenario's network: substations = ceil(homes / homes of one)"),
    SweepKey("interval", parse_duration, "meters.interval", "sampling interval, e.g. 1s, 10s, 15min"),
    SweepKey("step", parse_duration, "clock.step", "simulation step (default: the interval if it is shorter)"),
    SweepKey("duration", parse_duration, "clock.duration", "simulated time per point, e.g. 30s, 30min"),
    SweepKey("speed", _positive_float, "clock.speed", "with --realtime: simulated seconds per wall second"),
    SweepKey("link", str, "meters.link.technology", "ideal, rf_mesh, plc_g3, gprs, home_4g, wmbus"),
    SweepKey("gateways", _positive_int, "meters.link.gateways",
             "gateways (cells) the interval meters' link spreads them over, e.g. 3,6"),
    SweepKey("dia_batch", _positive_int, "meters.dia_batch", "readings per telemetry envelope"),
    SweepKey("network", str, "grid.network", "SimBench code or built-in network name"),
    SweepKey("ingest_workers", _positive_int, "study", "platform serve --ingest-workers"),
    SweepKey("partitions", _positive_int, "study", "simulator partitions (gridloop run --workers N)"),
    SweepKey("history", parse_history, "study",
             "days of past data restored into the store before the point, e.g. 0d, 7d, 30d (default 0)"),
)}


@dataclass(frozen=True)
class Point:
    """One study point: the swept values (as given) and the scenario they make."""

    values: dict[str, str]
    scenario: Scenario
    ingest_workers: int = 1
    partitions: int = 1  # simulator processes, each running its share of the substations
    history_s: float = 0.0  # past data restored into the store before the load (gridloop.study.history)
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.values.items())


def parse_sweeps(specs: list[str]) -> dict[str, list[str]]:
    """['meters=10,20', 'interval=1s'] → {'meters': ['10', '20'], 'interval': ['1s']}, each value checked."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not values.strip():
            raise StudyError(f"--sweep {spec!r}: write key=v1,v2,... e.g. meters=1000,10000")
        if key not in KEYS:
            raise StudyError(f"--sweep {spec!r}: unknown key {key!r}; known keys: {', '.join(KEYS)}")
        if key in out:
            raise StudyError(f"--sweep {key} is given twice; list all its values in one --sweep")
        items = [v.strip() for v in values.split(",") if v.strip()]
        for v in items:
            try:
                KEYS[key].parse(v)
            except ValueError as exc:
                raise StudyError(f"--sweep {key}: {v!r} is not valid: {exc}") from None
        out[key] = items
    return out


def household_capacity(grid: dict, seed: int) -> int:
    """How many household loads (hence electricity meters) a scenario's grid section has (districts included)."""
    return _household_capacity(json.dumps(grid, sort_keys=True, default=str), seed)


@cache
def _household_capacity(grid_json: str, seed: int) -> int:
    from gridloop.grid_models.networks import grid_network
    from gridloop.profiles.demand import household_loads
    from gridloop.scenario.grid_section import Grid

    return len(household_loads(grid_network(Grid.model_validate(json.loads(grid_json)), seed)))


def _set(data: dict, path: str, value: object) -> None:
    node = data
    *parents, leaf = path.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value


def study_base(data: dict, services: bool = False) -> dict:
    """The base scenario as a study runs it: no series/plots/progress bar; events and services only with
    ``services`` (a study of a service in the loop), otherwise a pure load test."""
    base = copy.deepcopy(data)
    if not services:
        base.pop("events", None)
        base.pop("services", None)
    base["outputs"] = {**base.get("outputs", {}), "series": False, "plots": False, "progress": False}
    return base


def _set_homes(data: dict, homes: int) -> None:
    """``homes`` in total as whole copies of the network (substations), the homes shared evenly among them."""
    grid = {"network": "1-LV-urban6--0-sw", **data.get("grid", {})}
    if grid.get("network") == "district" or grid.get("coupling"):
        raise ValueError("sweeps homes by copying the network; this scenario's grid is a district: sweep its "
                         "grid.substations in the scenario instead")
    one = household_capacity({**grid, "substations": 1}, int(data.get("seed", 1)))
    substations = -(-homes // one)
    _set(data, "grid.substations", substations)
    _set(data, "households.count", -(-homes // substations))


def apply_point(base: dict, values: dict[str, str], file: str = "<study>", services: bool = False) -> Point:
    """The scenario of one point: base data with each swept value set, then validated by the scenario model."""
    data = study_base(base, services)
    parsed = {k: KEYS[k].parse(v) for k, v in values.items()}
    workers, partitions, history_s = 1, 1, 0.0
    label = ",".join(f"{k}={v}" for k, v in values.items())
    for key, value in parsed.items():
        target = KEYS[key].target
        if key == "ingest_workers":
            workers = int(value)  # type: ignore[arg-type]
        elif key == "partitions":
            partitions = int(value)  # type: ignore[arg-type]
        elif key == "history":
            history_s = float(value)  # type: ignore[arg-type]
        elif key == "homes":
            try:
                _set_homes(data, int(value))  # type: ignore[arg-type]
            except ValueError as exc:
                raise StudyError(f"point {label}: {exc}") from None
        elif key != "meters":
            _set(data, target, value)
    if "interval" in parsed and "step" not in parsed:  # a meter samples at most once per step
        step = parse_duration(data.get("clock", {}).get("step", 60.0))
        if parsed["interval"] < step or parsed["interval"] % step:  # type: ignore[operator]
            _set(data, "clock.step", parsed["interval"])
    if "meters" in parsed:
        total = int(parsed["meters"])  # type: ignore[arg-type]
        homes = min(total, household_capacity({"network": "1-LV-urban6--0-sw", **data.get("grid", {})},
                                              int(data.get("seed", 1))))
        _set(data, "households.count", homes)
        _set(data, "meters.utility.water_meters", total - homes)
        _set(data, "meters.utility.water_interval", data.get("meters", {}).get("interval", 900.0))
    try:
        scenario = parse_scenario(data, file)
    except ScenarioError as exc:
        raise StudyError(f"point {label} is not a valid scenario:\n{exc}") from None
    if history_s > 0:
        try:
            check_plan(plan_history(scenario, history_s))
        except ValueError as exc:
            raise StudyError(f"point {label}: {exc}") from None
    if partitions > scenario.grid.copies:
        raise StudyError(f"point {label}: {partitions} partitions for {scenario.grid.copies} substation(s); a "
                         "partition runs whole substations")
    return Point(dict(values), scenario, workers, partitions, history_s)


def expand(base: dict, sweeps: dict[str, list[str]], file: str = "<study>", services: bool = False) -> list[Point]:
    """Every combination of the swept values (first key varies slowest), each checked before anything runs."""
    keys = list(sweeps)
    combos = itertools.product(*(sweeps[k] for k in keys)) if keys else [()]
    return [apply_point(base, dict(zip(keys, combo, strict=True)), file, services) for combo in combos]
