"""Two platform replicas (`gridloop platform serve --instance a|b`, separate processes) on one broker and one
store, SQLite (one shared WAL file) and MongoDB: ingest shared between them and surviving a SIGKILLed replica,
commands executed once whichever replica took them, the registry the same through both, re-sends once.

The store-level rules the replicas rely on are checked with two store handles in test_replica_store.py.
"""

from __future__ import annotations

import collections
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from gridloop.broker import free_port
from gridloop.contract import BrokerAddress
from gridloop.controllers.simulator_controller import Actuator, SimulatorController
from gridloop.mqtt_client import connect, wait_for
from gridloop.virtual_meters.dia import DeviceIntegrationAdapter
from gridloop.virtual_meters.electricity import MeterSample

T0 = 1_767_225_600_000
METERS, INSTANTS = 10, 60  # 600 readings in 60 envelopes of 10, published over about 1.2 s
LATER = 50  # instants published while a replica stops gracefully
QUANTITY = "electricity.energy.active.import"


# -- two replicas as processes


class Replica:
    """`gridloop platform serve --instance NAME` as a child process."""

    def __init__(self, name: str, broker_uri: str, store_uri: str, group: str, admin_key: str, logs: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "gridloop", "platform", "serve", "--broker", broker_uri, "--store",
                    store_uri, "--host", "127.0.0.1", "--port", str(self.port), "--instance", name,
                    "--ingest-group", group, "--ingest-workers", "2", "--cache-max-age-s", "0"]
        self.env = {**os.environ, "GRIDLOOP_ADMIN_KEY": admin_key}
        self.log = logs / f"platform-{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Replica:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=self.env)
        return self

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        def healthy() -> bool:
            assert self.proc.poll() is None, f"replica {self.name} exited:\n{self.log.read_text()[-3000:]}"
            try:
                return httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(healthy, timeout_s, poll_s=0.05), f"replica {self.name} not healthy"

    def kill(self) -> None:
        """SIGKILL: no goodbye to the broker, no drain, messages in flight unacknowledged."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _client(replica: Replica, key: str) -> httpx.Client:
    return httpx.Client(base_url=replica.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def _tenant(replica: Replica, admin_key: str, name: str) -> str:
    r = httpx.post(f"{replica.url}/api/v1/tenants", json={"name": name},
                   headers={"Authorization": f"Bearer {admin_key}"}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["api_key"]


def _forget_sessions(broker_uri: str, group: str, names: list[str], workers: int) -> None:
    """End whatever sessions the replicas left on the shared test broker (a replica that died in a failed test)."""
    broker = BrokerAddress.parse(broker_uri)
    ids = [f"gridloop-{group}-{n}-{i}" for n in names for i in range(workers)]
    ids += [f"gridloop-{group}-{n}-commands" for n in names]
    for cid in ids:
        client = connect(broker, cid, clean_start=True)
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def replicas(broker_uri, store_uri, tmp_path):
    admin = "adm_" + secrets.token_hex(8)
    group = f"rep-{secrets.token_hex(3)}"
    a, b = (Replica(n, broker_uri, store_uri, group, admin, tmp_path) for n in ("a", "b"))
    a.start(), b.start()
    try:
        a.wait_healthy()
        b.wait_healthy()
        yield a, b, admin
    finally:
        a.stop()
        b.stop()
        _forget_sessions(broker_uri, group, ["a", "b"], 2)


def _metrics(api: httpx.Client) -> dict:
    r = api.get("/api/v1/metrics")
    assert r.status_code == 200, r.text
    return r.json()


def _command_counters(admin_api: httpx.Client) -> dict:
    """The replica's command dispatcher counters (replica-wide, so only with the admin key)."""
    r = admin_api.get("/api/v1/admin/metrics")
    assert r.status_code == 200, r.text
    return r.json()["commands"]


@pytest.mark.slow
def test_two_replicas_share_ingest_commands_and_registry(replicas, broker_uri, store_uri, paho_device):
    a, b, admin = replicas
    tenant = f"rep{secrets.token_hex(3)}"
    key = _tenant(a, admin, tenant)
    api_a, api_b = _client(a, key), _client(b, key)
    assert (_metrics(api_a)["instance"], _metrics(api_b)["instance"]) == ("a", "b")
    _registry_changes_show_through_the_other_replica(a, b, api_a, api_b, admin)
    _readings_are_stored_once_across_a_killed_replica(a, api_a, api_b, broker_uri, tenant)
    admins = (_client(a, admin), _client(b, admin))  # a replica's own counters need the admin key
    _commands_execute_once_whichever_replica_took_them(api_a, api_b, broker_uri, tenant, admins)
    _a_device_back_online_gets_each_command_once(api_a, api_b, broker_uri, tenant, paho_device, admins)
    for replica in (a, b):  # no replica took over another's MQTT client ids (the broker would drop one)
        m = httpx.get(f"{replica.url}/api/v1/admin/metrics", headers={"Authorization": f"Bearer {admin}"}).json()
        assert (m["ingest"]["disconnects"], m["commands"]["disconnects"]) == (0, 0), m
    if store_uri.startswith("sqlite"):  # MQTT sessions, whatever the store: once is enough (FerretDB is slow)
        _a_stopped_replica_hands_its_share_to_the_other(a, api_a, api_b, broker_uri, tenant)


def _registry_changes_show_through_the_other_replica(a, b, api_a, api_b, admin) -> None:
    """(c) The registry is the store's: a change through A answers the same through B at once."""
    meters = [{"id": f"m{i}", "type": "electricity_meter", "phases": 3, "meta": {"interval_s": 1}}
              for i in range(METERS)]
    assert api_a.post("/api/v1/devices", json=[*meters, {"id": "sw1", "type": "switch"},
                                              {"id": "sw2", "type": "switch"}]).status_code == 201
    assert [d["id"] for d in api_b.get("/api/v1/devices").json()] == sorted(
        [m["id"] for m in meters] + ["sw1", "sw2"])
    assert api_b.post("/api/v1/assets", json={"id": "house-1", "kind": "house"}).status_code == 201
    assert api_b.patch("/api/v1/devices/m0", json={"asset": "house-1", "meta": {"interval_s": 1, "floor": 2}}
                       ).status_code == 200
    assert api_a.get("/api/v1/devices/m0").json()["asset"] == "house-1"
    assert api_a.get("/api/v1/assets/house-1").json()["devices"] == ["m0"]
    assert api_a.post("/api/v1/devices", json={"id": "tmp-1", "type": "water_meter"}).status_code == 201
    assert api_b.get("/api/v1/devices/tmp-1").status_code == 200  # B looked it up (and may cache its owner)
    assert api_a.delete("/api/v1/devices/tmp-1").status_code == 204
    assert api_b.get("/api/v1/devices/tmp-1").status_code == 404
    other = _client(b, _tenant(b, admin, f"oth{secrets.token_hex(3)}"))
    assert other.post("/api/v1/devices", json={"id": "tmp-1", "type": "gas_meter"}).status_code == 201  # via B
    assert api_b.get("/api/v1/devices/tmp-1").status_code == 404  # another tenant's: as if it did not exist
    assert api_a.post("/api/v1/devices", json={"id": "tmp-1", "type": "water_meter"}).status_code == 201  # its own
    assert api_b.get("/api/v1/devices/tmp-1").json()["type"] == "water_meter"
    assert _client(a, other.headers["Authorization"].removeprefix("Bearer ")).get(
        "/api/v1/devices/tmp-1").json()["type"] == "gas_meter"


def _readings_are_stored_once_across_a_killed_replica(a, api_a, api_b, broker_uri, tenant) -> None:
    """(a) A DIA publishes while replica A is SIGKILLed and restarted under its name: every reading once."""
    devices = [f"m{i}" for i in range(METERS)]

    def kill_and_restart_a() -> None:
        assert wait_for(lambda: _metrics(api_a)["ingest"].get("readings_stored", 0) > 0, 10)  # A takes part
        a.kill()  # mid-stream: the broker keeps A's sessions and queues A's share for them
        time.sleep(0.5)
        a.start()  # same --instance: resumes its sessions, gets what it never acknowledged
        a.wait_healthy()

    _publish_meanwhile(broker_uri, tenant, "dia-1", 0, INSTANTS, kill_and_restart_a)
    total = METERS * INSTANTS
    assert wait_for(lambda: _metrics(api_b)["readings_stored"] == total, 60), _metrics(api_b)
    time.sleep(1.0)  # nothing more may arrive
    after_a, after_b = _metrics(api_a), _metrics(api_b)
    assert after_a["readings_stored"] == after_b["readings_stored"] == total
    assert after_a["ingest"]["readings_stored"] > 0 and after_b["ingest"]["readings_stored"] > 0  # both ingested
    assert after_a["rejected"] == 0
    for dev in (devices[0], devices[-1]):
        for api in (api_a, api_b):
            got = api.get(f"/api/v1/devices/{dev}/readings").json()["readings"]
            assert [r["seq"] for r in got] == list(range(INSTANTS))
            assert [r["ts"] for r in got] == [T0 + 1000 * k for k in range(INSTANTS)]
    done = api_b.get("/api/v1/completeness", params={"start": T0, "end": T0 + 1000 * INSTANTS}).json()["devices"]
    assert {d["device"]: (d["expected"], d["received"]) for d in done} == {m: (INSTANTS, INSTANTS) for m in devices}


def _publish_meanwhile(broker_uri: str, tenant: str, dia_id: str, first: int, instants: int, during) -> None:
    """A DIA publishes ``instants`` sampling instants of all meters (from instant ``first``) while ``during()`` runs."""
    dia = DeviceIntegrationAdapter(BrokerAddress.parse(broker_uri), tenant, dia_id, batch=10)
    devices = [f"m{i}" for i in range(METERS)]

    def publish() -> None:
        for k in range(first, first + instants):
            dia.publish(MeterSample(T0 + 1000 * k, devices, np.full(METERS, k),
                                    {QUANTITY: 1000.0 * k + np.arange(METERS)}))
            time.sleep(0.02)

    feeder = threading.Thread(target=publish)
    try:
        feeder.start()
        during()
        feeder.join()
        assert dia.flush(20)
    finally:
        feeder.join()
        dia.close()


def _a_stopped_replica_hands_its_share_to_the_other(a, api_a, api_b, broker_uri, tenant) -> None:
    """A graceful stop (SIGTERM) of A mid-stream, A not coming back: B stores everything. Had A kept its
    sessions subscribed, the broker would queue A's share for it, for nobody."""
    before = _metrics(api_b)
    ingested_before = before["ingest"]["readings_stored"]

    def stop_a() -> None:
        time.sleep(0.4)
        a.stop()

    _publish_meanwhile(broker_uri, tenant, "dia-2", INSTANTS, LATER, stop_a)
    total = METERS * (INSTANTS + LATER)
    assert wait_for(lambda: _metrics(api_b)["readings_stored"] == total, 60), _metrics(api_b)
    time.sleep(0.5)
    after = _metrics(api_b)
    assert after["readings_stored"] == total
    assert after["ingest"]["readings_stored"] - ingested_before < METERS * LATER  # A stored its part


def _commands_execute_once_whichever_replica_took_them(api_a, api_b, broker_uri, tenant, admins) -> None:
    """(b) Commands POSTed to either replica, followed on the other: executed once, responses handled once."""
    applied: list[str] = []
    switch = Actuator("sw1", "switch", {"switch.open": lambda args: applied.append("open") or "opened",
                                        "switch.close": lambda args: applied.append("close") or "closed"})
    controller = SimulatorController(BrokerAddress.parse(broker_uri), tenant, [switch])
    stepping = threading.Event()

    def steps() -> None:  # the simulator's step loop: commands apply at step boundaries
        k = 0
        while not stepping.wait(0.05):
            controller.apply_pending(float(k))
            k += 1

    stepper = threading.Thread(target=steps)
    stepper.start()
    before = [_command_counters(adm)["responses"] for adm in admins]
    try:
        time.sleep(0.3)  # the controller's subscription is in place
        sent = {}
        for i, (post, follow) in enumerate([(api_a, api_b), (api_b, api_a)] * 2):
            name = ("switch.open", "switch.close")[i % 2]
            r = post.post("/api/v1/devices/sw1/commands", json={"name": name})
            assert r.status_code == 202, r.text
            cid = r.json()["id"]
            sent[cid] = name
            assert wait_for(lambda c=cid, f=follow: f.get(f"/api/v1/commands/{c}").json()["status"] == "executed",
                            10), follow.get(f"/api/v1/commands/{cid}").json()
        time.sleep(0.5)  # a second delivery or a late response would show now
    finally:
        stepping.set()
        stepper.join()
        controller.close()
    assert collections.Counter(e["id"] for e in controller.log) == {c: 1 for c in sent}
    assert (controller.counters.received, controller.counters.executed) == (4, 4)
    assert applied == ["open", "close", "open", "close"]
    for cid, name in sent.items():
        seen = [api.get(f"/api/v1/commands/{cid}").json() for api in (api_a, api_b)]
        assert seen[0] == seen[1]
        assert seen[0]["name"] == name and seen[0]["status"] == "executed"
        assert [s for s, _ in seen[0]["history"]] == ["pending", "sent", "accepted", "executed"]
    after = [_command_counters(adm)["responses"] for adm in admins]
    # accepted + executed per command, each handled by one replica (a plain subscription would be 2 x 8)
    assert sum(after) - sum(before) == 2 * len(sent)


def _a_device_back_online_gets_each_command_once(api_a, api_b, broker_uri, tenant, paho_device, admins) -> None:
    """Both replicas see the device come back online; each open command still goes out once."""
    assert sum(_command_counters(adm)["leader"] for adm in admins) == 1
    resent_before = sum(_command_counters(adm)["resent"] for adm in admins)
    dev = paho_device(broker_uri, tenant, "sw2")
    try:
        lost = api_a.post("/api/v1/devices/sw2/commands", json={"name": "switch.open"}).json()["id"]
        assert wait_for(lambda: api_b.get(f"/api/v1/commands/{lost}").json()["status"] == "sent", 5)
        dev.status("offline")
        assert wait_for(lambda: api_b.get("/api/v1/devices/sw2").json()["status"] == "offline", 5)
        time.sleep(0.3)  # both dispatchers have seen it too (the same message, their own subscriptions)
        held = api_b.post("/api/v1/devices/sw2/commands", json={"name": "switch.close"}).json()["id"]
        time.sleep(0.3)
        assert api_a.get(f"/api/v1/commands/{held}").json()["status"] == "pending"  # not sent to an offline device
        dev.listen()
        time.sleep(0.3)
        dev.status("online")
        assert wait_for(lambda: {lost, held} <= set(dev.received), 10), dev.received
        time.sleep(1.0)  # a second replica's copy would arrive now
        assert collections.Counter(dev.received) == {lost: 1, held: 1}
        assert [s for s, _ in api_a.get(f"/api/v1/commands/{held}").json()["history"]] == ["pending", "sent"]
        assert [s for s, _ in api_b.get(f"/api/v1/commands/{lost}").json()["history"]] == ["pending", "sent", "sent"]
        assert sum(_command_counters(adm)["resent"] for adm in admins) - resent_before == 2
    finally:
        dev.close()
