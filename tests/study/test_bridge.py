"""deploy/mosquitto-edge-bridge.conf run for real: an edge Mosquitto bridged to a core Mosquitto, the platform on
the core, a DIA and a simulator controller on the edge. No mocks: two mosquitto processes, paho clients, the
platform's REST API.

The edge runs the deploy file itself with only the deployment-specific lines swapped (the core's address, a
loopback listener, a data directory) and ``user`` added so that mosquitto, started as root here, keeps the
permissions of the test's directory; everything else is checked to be the file's own lines.
"""

from __future__ import annotations

import getpass
import os
import secrets
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
import paho.mqtt.client as mqtt
import pytest

from gridloop.broker import EmbeddedBroker, find_mosquitto, free_port, stop_child, wait_port
from gridloop.contract import BrokerAddress, shared, topic
from gridloop.controllers.simulator_controller import Actuator, SimulatorController
from gridloop.mqtt_client import connect, wait_for
from gridloop.virtual_meters.dia import DeviceIntegrationAdapter
from gridloop.virtual_meters.electricity import MeterSample

ROOT = Path(__file__).resolve().parents[2]
BRIDGE_FILE = ROOT / "deploy" / "mosquitto-edge-bridge.conf"
REQUIRED = os.environ.get("GRIDLOOP_REQUIRE_SERVICES") in ("1", "true")

TENANT = "site"
DIA = "dia-site01"
METERS = [f"m{i:02d}" for i in range(20)]
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
INTERVAL_MS = 10_000
# the only lines of the file the test replaces: where it runs, and open to the test's anonymous clients
SWAPPED = ("address", "listener", "persistence_location", "allow_anonymous", "plugin", "plugin_opt_config_file")


def _missing(what: str) -> None:
    """As in tests/conftest.py: fail under GRIDLOOP_REQUIRE_SERVICES=1, skip otherwise."""
    if REQUIRED:
        pytest.fail(f"{what} is required (GRIDLOOP_REQUIRE_SERVICES=1) but not available")
    pytest.skip(f"{what} not available; run scripts/test.sh to provision it")


def _directives(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def edge_conf(core: BrokerAddress, edge_port: int, data_dir: Path) -> str:
    """The deploy file with its address, listener and persistence_location lines swapped, and a ``user`` line."""
    swaps = {"address": f"address {core.host}:{core.port}", "listener": f"listener {edge_port} 127.0.0.1",
             "persistence_location": f"persistence_location {data_dir}/",
             "allow_anonymous": "allow_anonymous true", "plugin": "", "plugin_opt_config_file": ""}
    out, seen = [f"user {getpass.getuser()}"], []
    for line in BRIDGE_FILE.read_text().splitlines():
        key = line.split()[0] if line.strip() and not line.lstrip().startswith("#") else None
        if key in swaps:
            seen.append(key)
            line = swaps[key]
        if line:
            out.append(line)
    assert sorted(seen) == sorted(SWAPPED), f"each of {SWAPPED} must be in the file exactly once, found {seen}"
    return "\n".join(out) + "\n"


class EdgeBroker:
    """A mosquitto child process running the edge bridge file."""

    def __init__(self, core: BrokerAddress, workdir: Path) -> None:
        self.port = free_port()
        self.address = BrokerAddress("127.0.0.1", self.port)
        data = workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "edge.conf"
        self.conf.write_text(edge_conf(core, self.port, data))
        self.log = workdir / "edge.log"
        self._proc: subprocess.Popen | None = None

    def start(self) -> EdgeBroker:
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen([find_mosquitto(), "-c", str(self.conf)], stdout=log, stderr=log,
                                          stdin=subprocess.DEVNULL)
        if not wait_port("127.0.0.1", self.port, 10):
            self.stop()
            pytest.fail(f"the edge mosquitto did not start with {self.conf}:\n{self.log.read_text()}")
        return self

    def stop(self) -> None:
        stop_child(self._proc)


@pytest.fixture
def core(tmp_path):
    """The core broker; persistence on, so that it can be restarted with its sessions and retained messages."""
    if find_mosquitto() is None:
        _missing("Mosquitto")
    broker = EmbeddedBroker(workdir=str(tmp_path / "core"), prefer="mosquitto").start()
    yield broker
    broker.stop()


@pytest.fixture
def edge(core, tmp_path):
    broker = EdgeBroker(core.address, tmp_path / "edge").start()
    yield broker
    broker.stop()


@pytest.fixture
def core_platform(core, tmp_path):
    """The platform (ingest, dispatch, REST) on the CORE broker, SQLite store in tmp_path."""
    from gridloop.platform.service import PlatformService

    admin = "adm_" + secrets.token_hex(8)
    service = PlatformService(core.uri, f"sqlite:///{tmp_path / 'store.db'}", port=0, admin_key=admin)
    service.admin_key = admin
    with service:
        yield service


def _tenant_api(platform) -> httpx.Client:
    r = httpx.post(f"{platform.url}/api/v1/tenants", json={"name": TENANT},
                   headers={"Authorization": f"Bearer {platform.admin_key}"})
    assert r.status_code == 201, r.text
    api = httpx.Client(base_url=platform.url, headers={"Authorization": f"Bearer {r.json()['api_key']}"})
    devices = [{"id": m, "type": "electricity_meter", "phases": 3, "meta": {"interval_s": 10}} for m in METERS]
    devices += [{"id": DIA, "type": "dia"}, {"id": "sw1", "type": "switch"}]
    r = api.post("/api/v1/devices", json=devices)
    assert r.status_code == 201, r.text
    return api


def _sample(k: int) -> MeterSample:
    """Sampling instant k of every meter: value 1000*k + meter index, so a reading's value names it."""
    return MeterSample(T0 + INTERVAL_MS * k, list(METERS), np.full(len(METERS), k, dtype=np.int64),
                       {"electricity.voltage.l1": 1000.0 * k + np.arange(len(METERS), dtype=float)})


def _stored(api: httpx.Client) -> int:
    return api.get("/api/v1/metrics").json()["readings_stored"]


def _status(api: httpx.Client, cid: str) -> str:
    return api.get(f"/api/v1/commands/{cid}").json()["status"]


class Recorder:
    """A plain paho subscriber that keeps (topic, payload, retain) of what it receives."""

    def __init__(self, broker: BrokerAddress, pattern: str) -> None:
        self.got: list[tuple[str, bytes, bool]] = []
        self.client = connect(broker, f"rec-{secrets.token_hex(4)}", subscriptions=[(pattern, 1)],
                              on_message=lambda c, u, m: self.got.append((m.topic, m.payload, bool(m.retain))))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_the_deploy_file_is_used_unchanged_but_for_the_swapped_lines(tmp_path):
    conf = _directives(edge_conf(BrokerAddress("127.0.0.1", 1), 2, tmp_path))
    own = _directives(BRIDGE_FILE.read_text())
    assert [ln for ln in conf if ln.split()[0] not in (*SWAPPED, "user")] == [
        ln for ln in own if ln.split()[0] not in SWAPPED]
    assert "user" not in {ln.split()[0] for ln in own}  # the added line does not hide one of the file's


def test_edge_bridge_carries_readings_commands_and_a_core_restart(core, edge, core_platform):
    api = _tenant_api(core_platform)
    state = Recorder(edge.address, "$SYS/broker/connection/+/state")  # the bridge's own notifications, on the edge
    applied: list[str] = []
    controller = SimulatorController(edge.address, TENANT, [
        Actuator("sw1", "switch", {"switch.open": lambda args: applied.append("open") or "opened"})])
    dia = DeviceIntegrationAdapter(edge.address, TENANT, DIA, batch=8)  # 3 envelopes per instant
    try:
        assert wait_for(lambda: state.got and state.got[-1][1] == b"1", 10), "the bridge never connected"
        # the DIA's retained status goes out to the core, retained, and the platform sees it
        assert wait_for(lambda: api.get(f"/api/v1/devices/{DIA}").json()["status"] == "online", 10)

        # 1. readings published on the edge are stored by the platform on the core
        for k in range(10):
            dia.publish(_sample(k))
        dia.publish_events([{"dev": "m00", "ts": T0 + 5_000, "type": "power_outage", "severity": "major",
                             "data": {}}])
        assert dia.flush(10)
        assert wait_for(lambda: _stored(api) == 10 * len(METERS), 15), _stored(api)

        # 2. the core goes away mid-stream: the edge acknowledges and queues for the bridge, then forwards
        core.stop()
        for k in range(10, 20):
            dia.publish(_sample(k))
        assert dia.flush(10)  # acknowledged by the edge while the core is down
        time.sleep(1.0)
        assert state.got[-1][1] == b"0"  # the bridge noticed
        core.start()  # same port, same persistence directory
        for k in range(20, 30):  # published before the bridge is back (it retries every 5 s)
            dia.publish(_sample(k))
        assert dia.flush(10)
        assert wait_for(lambda: _stored(api) == 30 * len(METERS), 20), (_stored(api), edge.log.read_text())
        time.sleep(1.0)
        assert _stored(api) == 30 * len(METERS)  # nothing more arrives: no reading twice
        assert [s for _, s, _ in state.got[-3:]] == [b"1", b"0", b"1"]  # the link really went down and up
        for i, m in enumerate(METERS):
            rows = api.get(f"/api/v1/devices/{m}/readings").json()["readings"]
            assert [(r["ts"], r["q"]["electricity.voltage.l1"]) for r in rows] == [
                (T0 + INTERVAL_MS * k, 1000.0 * k + i) for k in range(30)], m
        events = api.get("/api/v1/devices/m00/events").json()["events"]
        assert [e["type"] for e in events] == ["power_outage"]

        # the core kept the status retained across its restart: a new subscriber there gets it, flagged retained
        retained = Recorder(core.address, topic(TENANT, "status", DIA))
        try:
            assert wait_for(lambda: retained.got, 5)
            assert retained.got[0] == (topic(TENANT, "status", DIA), b'"online"', True)
        finally:
            retained.close()

        # 3. a command from the platform's API crosses the bridge in; the responses cross it out
        assert wait_for(lambda: core_platform.dispatcher._client.is_connected(), 15)  # back after the restart
        cid = api.post("/api/v1/devices/sw1/commands", json={"name": "switch.open"}).json()["id"]
        assert wait_for(lambda: controller.arrivals == 1, 10), "the command never reached the edge"
        assert wait_for(lambda: _status(api, cid) == "accepted", 10), _status(api, cid)
        assert controller.apply_pending(0.0) == 1  # the simulator's next step applies it
        assert wait_for(lambda: _status(api, cid) == "executed", 10), _status(api, cid)
        assert applied == ["open"]
        history = [s for s, _ in api.get(f"/api/v1/commands/{cid}").json()["history"]]
        assert history == ["pending", "sent", "accepted", "executed"]
    finally:
        dia.close()
        controller.close()
        state.close()
    # the DIA's goodbye ("offline", retained) crosses too
    assert wait_for(lambda: api.get(f"/api/v1/devices/{DIA}").json()["status"] == "offline", 10)


def test_commands_wait_on_the_core_while_the_edge_is_down(core, edge, core_platform):
    """The bridge's persistent session on the core (cleansession false over MQTT 3.1.1): a command sent while the
    site's edge is down is queued on the core and reaches a device with a persistent session on the edge once
    the edge is back; the device's 'executed' crosses back. (With bridge_protocol_version mqttv50 the core
    drops the bridge's session at the disconnect and this command is lost: Mosquitto 2.0.11, measured.)"""
    api = _tenant_api(core_platform)
    commands = topic(TENANT, "commands", "sw1")
    received: list[str] = []

    def on_command(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        cid = orjson.loads(msg.payload)["id"]
        received.append(cid)
        done = {"v": 1, "id": cid, "ts": time.time_ns() // 1_000_000, "status": "executed", "detail": "opened"}
        client.publish(topic(TENANT, "responses", "sw1"), orjson.dumps(done), qos=1)

    device = connect(edge.address, "sw1-device", clean_start=False, session_expiry_s=3600,
                     subscriptions=[(commands, 1)], on_message=on_command, max_reconnect_delay_s=1)
    state = Recorder(edge.address, "$SYS/broker/connection/+/state")
    try:
        assert wait_for(lambda: state.got and state.got[-1][1] == b"1", 10), "the bridge never connected"
        state.close()
        edge.stop()  # the site is cut off (a graceful stop: the edge saves the device's session)
        cid = api.post("/api/v1/devices/sw1/commands", json={"name": "switch.open"}).json()["id"]
        assert wait_for(lambda: _status(api, cid) == "sent", 5)  # published to the core, nobody there takes it
        time.sleep(0.5)
        assert received == []
        edge.start()
        assert wait_for(lambda: received == [cid], 10), received
        assert wait_for(lambda: _status(api, cid) == "executed", 10), _status(api, cid)
    finally:
        device.disconnect()
        device.loop_stop()


def test_mosquitto_forgets_shared_subscriptions_across_a_restart(core):
    """The caveat in docs/scale-out/broker.md, measured: a persistent session's plain subscription survives a
    restart of Mosquitto 2.0 with persistence on, its shared subscription does not; while the broker runs, a
    disconnected persistent member of a shared group does get its messages queued."""
    pattern = shared("telemetry", "probe")

    def member(name: str, pattern: str | None, got: list[bytes]) -> mqtt.Client:
        c = connect(core.address, name, clean_start=False, session_expiry_s=3600, reconnect_on_failure=False,
                    on_message=lambda c, u, m: got.append(m.payload))
        if pattern:
            c.subscribe(pattern, 1)
            time.sleep(0.2)
        return c

    def away(*clients: mqtt.Client) -> None:
        for c in clients:
            c.disconnect()
            c.loop_stop()
        time.sleep(0.2)

    def publish(payload: bytes) -> None:
        pub = connect(core.address, f"probe-pub-{secrets.token_hex(3)}")
        pub.publish(topic("probe", "telemetry", "d"), payload, qos=1).wait_for_publish(5)
        away(pub)

    got: dict[str, list[bytes]] = {"shared": [], "plain": []}
    away(member("probe-shared", pattern, []), member("probe-plain", "gridloop/v1/+/telemetry/+", []))
    publish(b"broker running")
    shared_member = member("probe-shared", None, got["shared"])
    plain_member = member("probe-plain", None, got["plain"])
    assert wait_for(lambda: got["shared"] and got["plain"], 5)
    assert got == {"shared": [b"broker running"], "plain": [b"broker running"]}  # both queued while away
    away(shared_member, plain_member)

    core.stop()
    core.start()
    publish(b"after a restart")
    shared_member = member("probe-shared", None, got["shared"])
    plain_member = member("probe-plain", None, got["plain"])
    try:
        assert wait_for(lambda: len(got["plain"]) == 2, 5)
        time.sleep(0.5)
        assert got["plain"] == [b"broker running", b"after a restart"]
        assert got["shared"] == [b"broker running"]  # the group was gone: nothing kept, nothing delivered
    finally:
        away(shared_member, plain_member)
