"""The simulator controller over a real broker: namespaced substations and commands delivered twice."""

from __future__ import annotations

import secrets

import orjson
import pytest

from gridloop.contract import BrokerAddress, topic
from gridloop.controllers.simulator_controller import Actuator, SimulatorController
from gridloop.mqtt_client import connect, wait_for


def _switch(applied: list[str], device: str = "sw1") -> Actuator:
    def open_(args: dict) -> str:
        applied.append("open")
        return "opened"
    return Actuator(device, "switch", {"switch.open": open_})


def _listen(broker: BrokerAddress, tenant: str):
    responses: list[tuple[str, dict]] = []
    client = connect(broker, f"resp-{secrets.token_hex(3)}", subscriptions=[(topic(tenant, "responses", "+"), 1)],
                     on_message=lambda c, u, m: responses.append((m.topic.rsplit("/", 1)[-1],
                                                                  orjson.loads(m.payload))))
    return client, responses


@pytest.fixture
def mqtt(broker_uri):
    """A fresh tenant on the test broker, a response listener and a command sender."""
    broker, tenant = BrokerAddress.parse(broker_uri), f"t{secrets.token_hex(3)}"
    listener, responses = _listen(broker, tenant)
    sender = connect(broker, f"send-{secrets.token_hex(3)}")
    yield broker, tenant, responses, lambda device, cid: sender.publish(
        topic(tenant, "commands", device), _command(cid), qos=1).wait_for_publish(5)
    for c in (sender, listener):
        c.disconnect()
        c.loop_stop()


def _command(cid: str) -> bytes:
    return orjson.dumps({"v": 1, "id": cid, "ts": 1_767_225_600_000, "name": "switch.open", "args": {},
                         "expires": None})


def test_a_command_delivered_twice_is_applied_once_and_answered_again(mqtt):
    broker, tenant, responses, send = mqtt
    applied: list[str] = []
    controller = SimulatorController(broker, tenant, [_switch(applied)])
    try:
        send("sw1", "c1")
        assert wait_for(lambda: controller.arrivals == 1, 5)
        controller.apply_pending(0.0)
        assert wait_for(lambda: [r["status"] for _, r in responses] == ["accepted", "executed"], 5)
        send("sw1", "c1")  # re-sent
        assert wait_for(lambda: len(responses) == 3, 5)
        controller.apply_pending(60.0)
        assert applied == ["open"]  # applied once
        assert responses[2][1] == {**responses[1][1], "ts": responses[2][1]["ts"]}  # the answer repeated
        assert controller.counters.received == controller.counters.executed == 1
    finally:
        controller.close()


def test_a_substation_controller_takes_only_its_namespace(mqtt):
    broker, tenant, responses, send = mqtt
    applied_1: list[str] = []
    applied_2: list[str] = []
    s1 = SimulatorController(broker, tenant, [_switch(applied_1)], device_prefix="s001-")
    s2 = SimulatorController(broker, tenant, [_switch(applied_2)], device_prefix="s002-")
    try:
        send("s002-sw1", "c2")
        assert wait_for(lambda: s2.arrivals == 1, 5)
        s1.apply_pending(0.0)
        s2.apply_pending(0.0)
        assert wait_for(lambda: len(responses) == 2, 5)
        assert applied_1 == [] and applied_2 == ["open"]
        assert s1.arrivals == 0 and s1.counters.received == 0  # not its device: not even refused
        assert {dev for dev, _ in responses} == {"s002-sw1"}  # answered under the platform's device id
    finally:
        s1.close()
        s2.close()
