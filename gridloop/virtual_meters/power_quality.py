"""EN 50160 voltage events detected by meters, vectorised over meters and phases.

Each sampling instant, :func:`detect` compares every meter's per-phase RMS voltage with the
previous state and emits events only on transitions (edge-triggered):

- ``voltage_sag`` when a phase enters < 0.9 Un, ``voltage_sag_end`` when it recovers above
  0.9 Un + hysteresis;
- ``voltage_swell`` when a phase enters > 1.1 Un, ``voltage_swell_end`` below 1.1 Un - hysteresis;
- ``last_gasp`` and ``power_outage`` when the meter loses supply: all its phases < 0.05 Un
  (EN 50160 interruption) or the grid reports it de-energised.  ``last_gasp`` is what the
  meter pushes on its dying capacitor; ``power_outage`` is the logged event, stamped at the
  start of the interruption.  ``power_restored`` when supply returns.
- ``tamper`` on the rising edge of a tamper input (cover opened, magnetic field).

Losing supply ends any open sag/swell (``*_end`` emitted) and a meter without supply reports
no sags.  A single phase below 0.05 Un on a live polyphase meter is a (deep) sag of that phase.
Hysteresis is 2 % of Un as in EN/IEC 61000-4-30.  Absent phases (single-phase meters) are NaN.
Event types and severities are the contract's :class:`~gridloop.contract.EventType` and ``Severity``.

Example::

    state = PQState.initial(n_meters, 3)
    events, state = detect(voltage_v, state, un_v=230.0, energised=bus_energised, tamper=cover_open)
    dicts = to_contract_events(events, ts_ms, device_ids)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from gridloop.contract import EventType, Phase, Severity

SAG_LIMIT = 0.9
SWELL_LIMIT = 1.1
INTERRUPTION_LIMIT = 0.05
HYSTERESIS = 0.02


class EventCode(IntEnum):
    """Type codes of the event arrays; ``.type_name`` is the contract's ``type`` string."""

    VOLTAGE_SAG = 1
    VOLTAGE_SAG_END = 2
    VOLTAGE_SWELL = 3
    VOLTAGE_SWELL_END = 4
    POWER_OUTAGE = 5
    POWER_RESTORED = 6
    LAST_GASP = 7
    TAMPER = 8

    @property
    def type_name(self) -> EventType:
        """The contract's event type, e.g. ``EventType.VOLTAGE_SAG``."""
        return EventType[self.name]


class PhaseState(IntEnum):
    """Per-phase voltage state kept between samples."""

    NORMAL = 0
    SAG = 1
    SWELL = 2


_NORMAL, _SAG, _SWELL = (int(s) for s in PhaseState)  # plain ints: no enum lookup on the per-step path


_SEVERITY = {
    EventCode.VOLTAGE_SAG: Severity.MINOR,
    EventCode.VOLTAGE_SAG_END: Severity.INFO,
    EventCode.VOLTAGE_SWELL: Severity.MAJOR,
    EventCode.VOLTAGE_SWELL_END: Severity.INFO,
    EventCode.POWER_OUTAGE: Severity.MAJOR,
    EventCode.POWER_RESTORED: Severity.INFO,
    EventCode.LAST_GASP: Severity.CRITICAL,
    EventCode.TAMPER: Severity.CRITICAL,
}
DEEP_SAG_LIMIT = 0.7  # sags below 0.7 Un are reported as major


@dataclass(frozen=True)
class PQState:
    """What detection remembers between samples, for ``n_meters`` meters with ``n_phases`` phases."""

    phase: np.ndarray  # (n_meters, n_phases) int8 PhaseState
    supplied: np.ndarray  # (n_meters,) bool
    tamper: np.ndarray  # (n_meters,) bool

    @classmethod
    def initial(cls, n_meters: int, n_phases: int = 3) -> PQState:
        """All meters supplied, all phases normal, no tamper."""
        return cls(
            phase=np.zeros((n_meters, n_phases), dtype=np.int8),
            supplied=np.ones(n_meters, dtype=bool),
            tamper=np.zeros(n_meters, dtype=bool),
        )


@dataclass(frozen=True)
class PQEvents:
    """Events of one sample as parallel arrays."""

    meter: np.ndarray  # int meter index
    code: np.ndarray  # int8 EventCode
    phase: np.ndarray  # int phase index 0..2, -1 for meter-level events
    value_v: np.ndarray  # the phase voltage that triggered it (nan for meter-level events)

    def __len__(self) -> int:
        return int(self.meter.size)


_NO_EVENTS = PQEvents(np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int8), np.zeros(0, dtype=np.intp),
                      np.zeros(0))


def detect(
    voltage_v: np.ndarray,
    prev: PQState,
    un_v: float | np.ndarray = 230.0,
    energised: np.ndarray | None = None,
    tamper: np.ndarray | None = None,
) -> tuple[PQEvents, PQState]:
    """Events of one sampling instant from ``voltage_v`` ``(n_meters, n_phases)``, and the next state."""
    v = np.asarray(voltage_v, dtype=float)
    un = np.asarray(un_v, dtype=float)
    pu = v / (un[:, None] if un.ndim == 1 else un)
    present = ~np.isnan(pu)
    alive = (pu >= INTERRUPTION_LIMIT).any(axis=1)  # a missing phase (NaN) compares False
    supplied = alive if energised is None else alive & np.asarray(energised, dtype=bool)

    # phase state machine with hysteresis; an interruption ends any sag/swell and holds phases normal
    old = prev.phase
    below = present & (pu < SAG_LIMIT)
    above = present & (pu > SWELL_LIMIT)
    stays_sag = (old == _SAG) & present & (pu < SAG_LIMIT + HYSTERESIS)
    stays_swell = (old == _SWELL) & present & (pu > SWELL_LIMIT - HYSTERESIS)
    new = np.full_like(old, _NORMAL)
    new[above | stays_swell] = _SWELL
    new[below | stays_sag] = _SAG
    new[~supplied] = _NORMAL

    tamper_now = prev.tamper if tamper is None else np.asarray(tamper, dtype=bool)
    same_tamper = tamper is None or np.array_equal(tamper_now, prev.tamper)
    if same_tamper and not (supplied != prev.supplied).any() and not (new != old).any():
        return _NO_EVENTS, PQState(phase=new, supplied=supplied, tamper=tamper_now.copy())  # the usual sample

    lost = prev.supplied & ~supplied
    restored = ~prev.supplied & supplied
    was_sag, is_sag = old == PhaseState.SAG, new == PhaseState.SAG
    was_swell, is_swell = old == PhaseState.SWELL, new == PhaseState.SWELL
    edges = {
        EventCode.VOLTAGE_SAG: is_sag & ~was_sag,
        EventCode.VOLTAGE_SAG_END: was_sag & ~is_sag,
        EventCode.VOLTAGE_SWELL: is_swell & ~was_swell,
        EventCode.VOLTAGE_SWELL_END: was_swell & ~is_swell,
    }

    meters, codes, phases, values = [], [], [], []

    def add_meter_level(code: EventCode, mask: np.ndarray) -> None:
        mi = np.flatnonzero(mask)
        meters.append(mi)
        codes.append(np.full(mi.size, code, dtype=np.int8))
        phases.append(np.full(mi.size, -1))
        values.append(np.full(mi.size, np.nan))

    # per meter, in causal order: restoration, phase edges, loss of supply, tamper
    add_meter_level(EventCode.POWER_RESTORED, restored)
    for code, mask in edges.items():
        mi, ph = np.nonzero(mask)
        meters.append(mi)
        codes.append(np.full(mi.size, code, dtype=np.int8))
        phases.append(ph)
        values.append(v[mi, ph])
    add_meter_level(EventCode.LAST_GASP, lost)
    add_meter_level(EventCode.POWER_OUTAGE, lost)
    add_meter_level(EventCode.TAMPER, tamper_now & ~prev.tamper)
    meter = np.concatenate(meters)
    order = np.argsort(meter, kind="stable")
    events = PQEvents(
        meter=meter[order],
        code=np.concatenate(codes)[order],
        phase=np.concatenate(phases)[order],
        value_v=np.concatenate(values)[order],
    )
    return events, PQState(phase=new, supplied=supplied, tamper=tamper_now.copy())


_PHASES = (Phase.L1, Phase.L2, Phase.L3)


def to_contract_events(
    events: PQEvents, ts_ms: int, device_ids: list[str] | np.ndarray, un_v: float = 230.0
) -> list[dict[str, Any]]:
    """Contract event dicts ``{"dev","ts","type","severity","data"}`` (:class:`~gridloop.contract.Event` fields)."""
    out: list[dict[str, Any]] = []
    columns = (events.meter.tolist(), events.code.tolist(), events.phase.tolist(), events.value_v.tolist())
    for m, c, ph, val in zip(*columns, strict=True):
        code = EventCode(c)
        severity = _SEVERITY[code]
        data: dict[str, Any] = {}
        if ph >= 0:
            data = {"phase": _PHASES[ph], "voltage_v": round(val, 2), "un_v": un_v}
            if code == EventCode.VOLTAGE_SAG and val < DEEP_SAG_LIMIT * un_v:
                severity = Severity.MAJOR
        out.append(
            {"dev": str(device_ids[m]), "ts": int(ts_ms), "type": code.type_name, "severity": severity, "data": data}
        )
    return out
