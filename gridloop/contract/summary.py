"""The run summary: what ``gridloop run`` writes to ``summary.json`` and tools (study, CLI, tests) read back."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")  # extensions are welcome; renaming what is here is not


class Realtime(_Part):
    enabled: bool
    speed: float
    max_lag_s: float = Field(description="largest lag of a step behind the wall clock")
    late_steps: int


class Messages(_Part):
    readings_sampled: int
    readings_published: int
    readings_stored: int
    readings_lost: int = Field(description="sampled − stored")
    rejected: int = Field(description="messages the platform rejected with a reason")


class GridSummary(_Part):
    v_min_pu: float
    v_max_pu: float
    max_line_loading_percent: float
    network: str | None = None
    backend: str | None = None
    deenergized_bus_steps: int = 0


class CommandCounts(_Part):
    received: int = 0
    executed: int = 0
    rejected: int = 0
    failed: int = 0


class LinkSection(StrEnum):
    """The scenario section that sets a meter class's link."""

    HOME = "meters.link"
    HOME_1HZ = "meters.link_1hz"
    SUBSTATION = "meters.substation_link"
    UTILITY = "meters.utility.link"


class LinkedMeters(StrEnum):
    """The meter classes that each travel their own link to the DIA."""

    HOME_INTERVAL = "home_interval"
    HOME_1HZ = "home_1hz"
    BLINK_DETECTOR = "blink_detector"
    SUBSTATION = "substation"
    HEAT = "heat"
    WATER = "water"
    GAS = "gas"


class LinkPath(_Part):
    """One meter class's way to the DIA: the scenario section that sets its link, and what that link did."""

    meters: LinkedMeters = Field(description="the meter class on this path")
    section: LinkSection = Field(description="where its link is set (blink detectors: the home gateway's, "
                                             "meters.link_1hz if set, else meters.link)")
    meter_count: int = Field(description="meters on this path")
    technology: str
    profile: str
    gateways: int = Field(description="gateways in the run (per substation x substations); 0 when ideal")
    buffering: bool
    lost_in_link: int
    dropped_gateway_overflow: int
    buffered_at_end: int


class LinkSummary(_Part):
    """technology, gateways and buffering are meters.link's; the counts add up every path (``paths``: each one)."""

    technology: str
    gateways: int
    buffering: bool
    lost_in_link: int
    dropped_gateway_overflow: int
    buffered_at_end: int
    dia_dropped: int
    paths: list[LinkPath] = Field(default_factory=list, description="per meter class with meters: its link, its counts")


class EventCounts(_Part):
    published: int
    by_type: dict[str, int]


class QueryableLatency(_Part):
    """Publish → queryable: for a few probe meters, from the DIA handing a reading to MQTT until the platform's REST
    API returns it (polled every ``poll_s`` during the run and its drain, so each figure is high by at most that)."""

    meters: list[str] = Field(description="the probe meters")
    readings: int = Field(description="probe readings seen stored")
    unseen: int = Field(description="probe readings published but never returned by the API before the run ended")
    poll_s: float
    p50_s: float | None = None
    p99_s: float | None = None
    max_s: float | None = None


class RunSummary(_Part):
    """``summary.json``: the contract's keys (scenario … commands) and gridloop's extensions."""

    scenario: str
    seed: int
    sim_start: str = Field(description="ISO 8601")
    sim_end: str = Field(description="ISO 8601")
    steps: int
    wall_s: float
    realtime: Realtime
    meters: int
    messages: Messages
    grid: GridSummary
    commands: CommandCounts
    loop_wall_s: float | None = None
    substations: list[str] = Field(default_factory=list)
    links: LinkSummary | None = None
    demand: dict[str, Any] = Field(default_factory=dict)
    batteries: dict[str, dict[str, float]] = Field(default_factory=dict)
    events: EventCounts | None = None
    faults: list[dict[str, Any]] = Field(default_factory=list)
    injected: list[dict[str, Any]] = Field(default_factory=list)
    customer_minutes_lost: float = 0.0
    completeness: dict[str, Any] = Field(default_factory=dict)
    kpis: dict[str, Any] = Field(default_factory=dict)
    outputs: list[str] = Field(default_factory=list)
    partitions: list[dict[str, Any]] = Field(default_factory=list, description="per partition, with --workers")
    queryable_latency: QueryableLatency | None = Field(
        default=None, description="publish → queryable latency of probe meters (not with --workers)")

    def write(self, run_dir: Path) -> Path:
        path = Path(run_dir) / "summary.json"
        path.write_text(self.model_dump_json(indent=2))
        return path

    @classmethod
    def read(cls, run_dir: Path) -> RunSummary:
        return cls.model_validate_json((Path(run_dir) / "summary.json").read_text())
