"""docs/contract.md's generated tables match the code, and the decoders hold the bounds they document."""

from __future__ import annotations

import msgspec
import orjson
import pytest

from gridloop.contract import Quantity, Rejected, check_args
from gridloop.contract.bounds import MAX_PAYLOAD_BYTES, SEQ_MAX, TS_MAX_MS, TS_MIN_MS
from gridloop.contract.commands import CommandMessage, InvalidCommand, decode_command, encode
from gridloop.contract.document import DOC, render
from gridloop.contract.events import decode_events
from gridloop.contract.telemetry import decode_readings

T0 = 1_767_225_600_000
V1 = "electricity.voltage.l1"


def test_the_generated_part_of_docs_contract_is_current():
    assert DOC.read_text() == render(DOC.read_text()), "run: python -m gridloop.contract.document --write"


def test_every_quantity_and_command_is_documented():
    text = DOC.read_text()
    assert all(f"`{q.value}` | {q.unit.value} |" in text for q in Quantity)
    assert "`load.curtail` | `limit_kw`: number (≥ 0" in text


def _one(**fields) -> bytes:
    reading = {"dev": "m1", "ts": T0, "seq": 1, "q": {V1: 230.0}} | fields
    return orjson.dumps({"v": 1, "readings": [reading]})


@pytest.mark.parametrize(("fields", "why"), [
    ({"ts": TS_MIN_MS - 1}, "$.ts"), ({"ts": TS_MAX_MS}, "$.ts"), ({"ts": 2**63}, "$.ts"), ({"ts": "1"}, "$.ts"),
    ({"seq": -1}, "$.seq"), ({"seq": SEQ_MAX + 1}, "$.seq"), ({"seq": True}, "$.seq"),
    ({"q": {}}, "$.q"), ({"q": {"electricity.voltage": 1.0}}, "Invalid enum value"), ({"q": {V1: 1e308}}, "$.q"),
    ({"q": {V1: None}}, "$.q"), ({"dev": "M1"}, "$.dev"), ({"dev": "x" * 64}, "$.dev"),
])
def test_a_reading_out_of_bounds_is_rejected_with_its_reason(fields, why):
    readings, reasons, *_ = decode_readings(_one(**fields))
    assert readings == [] and len(reasons) == 1 and why in reasons[0], reasons


def test_good_readings_beside_bad_ones_are_kept():
    payload = orjson.dumps({"v": 1, "readings": [
        {"dev": "m1", "ts": T0, "q": {V1: 1.0}}, {"dev": "m1", "ts": -5, "q": {V1: 1.0}},
        {"dev": "m2", "ts": T0, "seq": 0, "q": {V1: 2.0}}]})
    readings, reasons, positions, _ = decode_readings(payload)
    assert [r.dev for r in readings] == ["m1", "m2"] and positions == [0, 2]
    assert reasons[0].startswith("readings[1]:")


DEEP = b"[" * 10_000


@pytest.mark.parametrize("payload", [b"{", b"[]", b'{"v":2,"readings":[]}', b'{"v":1}', b"\xff\xfe",
                                     b'{"v":1,"readings":' + DEEP, b'{"v":1,"readings":[{"dev":"m","q":' + DEEP,
                                     b" " * (MAX_PAYLOAD_BYTES + 1)])
def test_a_payload_that_is_no_envelope_is_rejected_whole(payload):
    with pytest.raises(Rejected):
        decode_readings(payload)
    with pytest.raises(Rejected):
        decode_events(payload)


def test_events_outside_the_list_or_with_big_data_are_rejected():
    payload = orjson.dumps({"v": 1, "events": [
        {"dev": "m1", "ts": T0, "type": "voltage_sag", "severity": "minor", "data": {"voltage_v": 190.0}},
        {"dev": "m1", "ts": T0, "type": "meteor_strike"},
        {"dev": "m1", "ts": T0, "type": "tamper", "data": {f"k{i}": i for i in range(17)}},
        {"dev": "m1", "ts": T0, "type": "tamper", "data": {"k": "x" * 257}},
        {"dev": "m1", "ts": T0, "type": "tamper", "data": {"k": {"deep": 1}}}]})
    events, reasons = decode_events(payload)
    assert [e.type for e in events] == ["voltage_sag"] and len(reasons) == 4


@pytest.mark.parametrize(("name", "args", "why"), [
    ("switch.explode", {}, "unknown command"), ("switch.open", {"x": 1}, "unexpected"),
    ("storage.setpoint", {}, "missing"), ("storage.setpoint", {"p_kw": float("nan")}, "p_kw"),
    ("storage.setpoint", {"p_kw": float("inf")}, "p_kw"), ("storage.setpoint", {"p_kw": False}, "true/false"),
    ("storage.setpoint", {"p_kw": "1"}, "not text"), ("storage.setpoint", {"p_kw": None}, "null"),
    ("load.curtail", {"limit_kw": 1, "duration_s": 0}, "duration_s"), ("tap.set", {"position": 1.5}, "position"),
])
def test_commands_out_of_contract_are_refused(name, args, why):
    with pytest.raises(InvalidCommand, match=why):
        check_args(name, args)


def test_a_command_round_trips_and_whole_floats_count_as_integers():
    assert check_args("load.curtail", {"limit_kw": 2, "duration_s": 600.0}).duration_s == 600
    message = CommandMessage(v=1, id="c1", ts=T0, name="tap.set", args={"position": 2})
    assert decode_command(encode(message)) == msgspec.convert(msgspec.to_builtins(message), CommandMessage)
    with pytest.raises(InvalidCommand, match="position"):
        decode_command(encode(CommandMessage(v=1, id="c1", ts=T0, name="tap.set", args={"position": 1000})))
