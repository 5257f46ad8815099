"""EN 50160 event detection: edge-triggered, hysteresis, outages with last gasp, tamper; contract dicts."""

from __future__ import annotations

import numpy as np

from gridloop.virtual_meters.power_quality import (
    EventCode,
    PQEvents,
    PQState,
    detect,
    to_contract_events,
)

UN = 230.0


def run(trace: np.ndarray, energised: np.ndarray | None = None, tamper: np.ndarray | None = None):
    """Feed ``trace`` (n_samples, n_meters, n_phases) sample by sample; events per sample."""
    state = PQState.initial(trace.shape[1], trace.shape[2])
    out: list[PQEvents] = []
    for k in range(trace.shape[0]):
        ev, state = detect(
            trace[k],
            state,
            UN,
            energised=None if energised is None else energised[k],
            tamper=None if tamper is None else tamper[k],
        )
        out.append(ev)
    return out, state


def codes_of(events: list[PQEvents], meter: int) -> list[tuple[int, str]]:
    """(sample index, type) of one meter's events, in order."""
    return [
        (k, EventCode(c).type_name)
        for k, ev in enumerate(events)
        for m, c in zip(ev.meter, ev.code, strict=True)
        if m == meter
    ]


def test_sag_is_reported_once_on_entry_and_once_on_exit() -> None:
    v = np.full((10, 1, 3), UN)
    v[2:6, 0, 1] = 0.8 * UN  # four samples of sag on L2
    events, _ = run(v)
    assert codes_of(events, 0) == [(2, "voltage_sag"), (6, "voltage_sag_end")]
    assert events[2].phase.tolist() == [1]
    assert events[2].value_v[0] == 0.8 * UN


def test_hysteresis_stops_chatter_around_the_threshold() -> None:
    pu = [1.0, 0.89, 0.905, 0.895, 0.91, 0.93, 0.93, 1.0]  # hovering near 0.9 Un, then recovering
    v = UN * np.array(pu).reshape(-1, 1, 1)
    events, _ = run(v)
    assert codes_of(events, 0) == [(1, "voltage_sag"), (5, "voltage_sag_end")]


def test_swell_edges() -> None:
    v = np.full((6, 2, 3), UN)
    v[1:3, 1, 0] = 1.15 * UN
    events, _ = run(v)
    assert codes_of(events, 1) == [(1, "voltage_swell"), (3, "voltage_swell_end")]
    assert codes_of(events, 0) == []


def test_outage_gives_last_gasp_once_and_restoration_once() -> None:
    v = np.full((12, 2, 3), UN)
    v[3:5, 0, :] = 0.85 * UN  # sag on all phases first
    v[5:9, 0, :] = 0.0  # then loss of supply
    events, state = run(v)
    assert codes_of(events, 0) == [
        (3, "voltage_sag"),
        (3, "voltage_sag"),
        (3, "voltage_sag"),
        (5, "voltage_sag_end"),
        (5, "voltage_sag_end"),
        (5, "voltage_sag_end"),
        (5, "last_gasp"),
        (5, "power_outage"),
        (9, "power_restored"),
    ]
    assert codes_of(events, 1) == []
    assert state.supplied.all()


def test_de_energised_meter_is_out_even_if_voltage_is_reported() -> None:
    v = np.full((4, 1, 1), UN)
    energised = np.array([[True], [False], [False], [True]])
    events, _ = run(v, energised=energised)
    assert codes_of(events, 0) == [(1, "last_gasp"), (1, "power_outage"), (3, "power_restored")]


def test_one_dead_phase_of_a_live_meter_is_a_sag_not_an_outage() -> None:
    v = np.full((3, 1, 3), UN)
    v[1:, 0, 2] = 0.0
    events, _ = run(v)
    assert codes_of(events, 0) == [(1, "voltage_sag")]


def test_single_phase_meters_use_nan_for_missing_phases() -> None:
    v = np.full((4, 2, 3), np.nan)
    v[:, :, 0] = UN
    v[1:3, 0, 0] = 0.01 * UN
    events, _ = run(v)
    assert codes_of(events, 0) == [(1, "last_gasp"), (1, "power_outage"), (3, "power_restored")]
    assert codes_of(events, 1) == []


def test_tamper_is_rising_edge_only() -> None:
    v = np.full((5, 1, 1), UN)
    tamper = np.array([[False], [True], [True], [False], [True]])
    events, _ = run(v, tamper=tamper)
    assert codes_of(events, 0) == [(1, "tamper"), (4, "tamper")]


def reference_sag_events(pu: np.ndarray) -> list[tuple[int, str]]:
    """Scalar state machine for one phase of a live meter, for cross-checking the vectorised one."""
    state, out = "normal", []
    for k, x in enumerate(pu):
        if state == "normal" and x < 0.9:
            state, ev = "sag", "voltage_sag"
        elif state == "normal" and x > 1.1:
            state, ev = "swell", "voltage_swell"
        elif state == "sag" and x >= 0.92:
            state, ev = ("swell", "voltage_sag_end") if x > 1.1 else ("normal", "voltage_sag_end")
        elif state == "swell" and x <= 1.08:
            state, ev = ("sag", "voltage_swell_end") if x < 0.9 else ("normal", "voltage_swell_end")
        else:
            continue
        out.append((k, ev))
        if ev.endswith("_end") and state != "normal":
            out.append((k, f"voltage_{state}"))
    return out


def test_vectorised_detection_matches_a_scalar_reference() -> None:
    rng = np.random.default_rng(21)
    n_samples, n_meters = 200, 300
    pu = 1.0 + 0.07 * rng.standard_normal((n_samples, n_meters, 1)).cumsum(axis=0) / 4
    pu = np.clip(pu, 0.2, 1.5)  # stays above the interruption limit: only sags and swells
    events, _ = run(pu * UN)
    got: dict[int, list[tuple[int, str]]] = {m: [] for m in range(n_meters)}
    for k, ev in enumerate(events):
        for m, c in zip(ev.meter.tolist(), ev.code.tolist(), strict=True):
            got[m].append((k, EventCode(c).type_name))
    for m in range(n_meters):
        assert sorted(got[m]) == sorted(reference_sag_events(pu[:, m, 0])), m
    assert sum(len(e) for e in events) > 100  # the traces really cross the limits


def test_contract_event_dicts() -> None:
    v = np.full((2, 2, 3), UN)
    v[1, 0, 0] = 0.5 * UN
    v[1, 1, :] = 0.0
    events, _ = run(v)
    dicts = to_contract_events(events[1], 1_767_225_610_000, ["tur-m0001", "tur-m0002"])
    assert dicts[0] == {
        "dev": "tur-m0001",
        "ts": 1_767_225_610_000,
        "type": "voltage_sag",
        "severity": "major",
        "data": {"phase": "l1", "voltage_v": 115.0, "un_v": UN},
    }
    assert [(d["dev"], d["type"]) for d in dicts[1:]] == [("tur-m0002", "last_gasp"), ("tur-m0002", "power_outage")]
    for d in dicts:
        assert set(d) == {"dev", "ts", "type", "severity", "data"}
