"""The scenario's ``grid`` section: which network (by name, or generated), its backend and what is added to it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gridloop.grid_models.network_names import lv_type_problem, network_name_problem

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Battery(_Strict):
    """A grid battery at a bus, commanded by ``storage.setpoint`` (p_kw: + charges, - discharges)."""

    id: str = Field(pattern=NAME_PATTERN)
    bus: int | str = Field(description="bus index or name in the network")
    p_max_kw: float = Field(gt=0)
    capacity_kwh: float = Field(gt=0)
    soc: float = Field(0.5, ge=0, le=1, description="initial state of charge")
    efficiency: float = Field(0.95, gt=0, le=1, description="one-way (charge and discharge each)")


class TapControl(_Strict):
    """Automatic on-load tap changers: every transformer with a tap range holds its LV busbar in a dead band."""

    v_set_pu: float = Field(1.0, gt=0.8, lt=1.2, description="LV busbar set point")
    deadband_pu: float = Field(0.02, gt=0.0125, lt=0.2, description=(
        "half-width of the band; wider than half a 2.5 % tap step or the controller hunts"))


DEFAULT_LV_TYPES = ["1-LV-rural3--0-sw", "1-LV-semiurb5--0-sw", "1-LV-urban6--0-sw"]


class Grid(_Strict):
    """Which network, which solver backend, and what is added to it.

    ``network: district`` builds ONE net: a 20 kV feeder (``mv``) with ``substations`` LV substations, each a
    copy of one of ``lv_types`` (SimBench LV grids). ``network: feeders`` builds one synthetic substation with
    ``feeders`` x ``homes_per_feeder`` single-phase homes. For any other network ``substations`` is the number
    of independent copies of it.
    """

    network: str = "1-LV-urban6--0-sw"
    backend: Literal["pandapower", "pgm"] = "pgm"
    per_phase: bool = Field(False, description="unbalanced (per-phase) power flow: meters read L1/L2/L3 apart")
    batteries: list[Battery] = Field(default_factory=list)
    substations: int = Field(1, ge=1, le=9999, description=(
        "independent copies of the network, each with its own seed, homes and device ids (s001-...); "
        "partitions split a run by substation; network district: the LV substations on its MV feeder"))
    lv_types: list[str] = Field(default_factory=lambda: list(DEFAULT_LV_TYPES), min_length=1, description=(
        "district: SimBench LV grid codes, dealt round robin over the substations in a seeded order"))
    mv: Literal["radial", "ring"] = Field("radial", description=(
        "district: MV feeders radial, or open rings (a normally-open switch mid-ring)"))
    feeders: int = Field(4, ge=1, le=64, description="network feeders: LV feeders of the substation")
    homes_per_feeder: int = Field(25, ge=1, le=500, description="network feeders: single-phase homes per feeder")
    phase_skew: float = Field(0.0, ge=0, le=1, description=(
        "network feeders: 0 spreads homes evenly over L1-L3, 1 puts all on L1"))
    tap_control: TapControl | None = Field(None, description="automatic tap changers (off if unset)")
    coupling: Literal["helics"] | None = Field(None, description=(
        "district or SimBench MV+LV net: helics splits it by LV substation over the partitions of "
        "gridloop run --workers N, coupled through the MV grid by HELICS federates (off if unset)"))

    @field_validator("network")
    @classmethod
    def _known_network(cls, name: str) -> str:
        problem = network_name_problem(name)  # by name only: nothing is loaded
        if problem:
            raise ValueError(problem)
        return name

    @field_validator("lv_types")
    @classmethod
    def _lv_grids(cls, codes: list[str]) -> list[str]:
        for i, code in enumerate(codes):
            problem = lv_type_problem(code)
            if problem:
                raise ValueError(f"lv_types[{i}]: {problem}")
        return codes

    @model_validator(mode="after")
    def _coupled_net(self) -> Grid:
        if self.coupling is None:
            return self
        if not (self.is_district or self.is_mvlv):
            raise ValueError(f"grid.coupling: helics splits a net at its MV/LV substations: it needs network: "
                             f"district or a SimBench MV+LV code (1-MVLV-...), not {self.network!r}")
        for name, bad in (("grid.backend", self.backend != "pgm"), ("grid.per_phase", self.per_phase),
                          ("grid.batteries", bool(self.batteries))):
            if bad:
                raise ValueError(f"grid.coupling: helics runs balanced LV substations on pgm without grid "
                                 f"batteries: {name} is not supported with it")
        return self

    @property
    def is_mvlv(self) -> bool:
        """A SimBench net of an MV grid with its LV grids (1-MVLV-...)."""
        return self.network.strip().startswith("1-MVLV-")

    @property
    def is_district(self) -> bool:
        return self.network.strip() == "district"

    @property
    def copies(self) -> int:
        """Independent copies of the network the run is made of (a district is one net, whatever its size)."""
        return 1 if self.is_district else self.substations
