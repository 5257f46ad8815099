"""Broker accounts enforced by a real Mosquitto (dynamic-security plugin), tested from the other side: what the
platform stores and what other clients receive when a tenant's own account tries to read or disrupt."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from gridloop.broker import find_mosquitto, free_port, wait_port
from gridloop.broker_accounts import DynsecControl, MosquittoAuth
from gridloop.contract import BrokerAddress, Quantity, TopicKind, topic
from gridloop.mqtt_client import TlsFiles, connect, wait_for
from gridloop.platform.service import PlatformService

T0 = 1_767_225_600_000
V1 = Quantity.VOLTAGE_L1.value


@pytest.fixture
def secured_broker(tmp_path):
    if find_mosquitto() is None:
        pytest.fail("Mosquitto is required for the broker-account tests")
    auth_dir = Path(tempfile.mkdtemp(prefix="gridloop-auth-"))  # pytest's tmp dirs are private to root
    auth_dir.chmod(0o755)
    auth = MosquittoAuth(auth_dir)
    creds = {"alpha": auth.add_tenant("alpha"), "beta": auth.add_tenant("beta"), "platform": auth.add_platform(),
             "admin": auth.add_admin()}
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(auth.mosquitto_conf(port) + "persistence false\n")
    proc = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_port("127.0.0.1", port, 10)
    yield BrokerAddress("127.0.0.1", port), creds
    proc.terminate()
    proc.wait(5)
    shutil.rmtree(auth_dir)


class Client:
    """A paho client under one account that records what it receives and what the broker granted."""

    def __init__(self, broker: BrokerAddress, creds: tuple[str, str] | None, client_id: str | None = None,
                 tls: TlsFiles | None = None) -> None:
        """``creds`` None: the client certificate in ``tls`` is the credential."""
        self.got: list[str] = []
        self.granted: list[str] = []
        self._lock = threading.Lock()
        user, password = creds if creds else (None, None)
        self.mqtt = connect(broker, client_id or f"c-{secrets.token_hex(4)}", username=user, password=password,
                            tls=tls, on_message=self._on_message)
        self.mqtt.on_subscribe = lambda c, u, mid, codes, props: self.granted.extend(str(x) for x in codes)

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.got.append(msg.topic)

    def subscribe(self, filters: list[str]) -> list[str]:
        self.granted.clear()
        self.mqtt.subscribe([(f, 1) for f in filters])
        assert wait_for(lambda: len(self.granted) == len(filters), 5)
        return list(self.granted)

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


def test_wrong_password_and_anonymous_are_refused(secured_broker):
    broker, _creds = secured_broker
    with pytest.raises(ConnectionError):
        connect(broker, "intruder", username="alpha", password="guess", timeout_s=3)
    with pytest.raises(ConnectionError):
        connect(broker, "anonymous", timeout_s=3)


def test_tenant_reaches_only_its_own_topics(secured_broker):
    broker, creds = secured_broker
    platform, alpha, beta = Client(broker, creds["platform"]), Client(broker, creds["alpha"]), Client(
        broker, creds["beta"])
    assert platform.subscribe([f"gridloop/v1/+/{TopicKind.TELEMETRY}/+"]) == ["Granted QoS 1"]
    assert alpha.subscribe([f"gridloop/v1/alpha/{TopicKind.TELEMETRY}/+"]) == ["Granted QoS 1"]
    beta.mqtt.publish(topic("beta", TopicKind.TELEMETRY, "dia"), b"{}", qos=1).wait_for_publish(3)
    alpha.mqtt.publish(topic("beta", TopicKind.TELEMETRY, "spoof"), b"{}", qos=1).wait_for_publish(3)  # as beta
    alpha.mqtt.publish(topic("alpha", TopicKind.TELEMETRY, "dia"), b"{}", qos=1).wait_for_publish(3)
    time.sleep(0.5)
    assert sorted(platform.got) == ["gridloop/v1/alpha/telemetry/dia", "gridloop/v1/beta/telemetry/dia"]
    assert alpha.got == ["gridloop/v1/alpha/telemetry/dia"]  # nothing of beta's reaches alpha
    for c in (platform, alpha, beta):
        c.close()


@pytest.fixture
def secured_platform(secured_broker, tmp_path):
    broker, creds = secured_broker
    admin = "adm_" + secrets.token_hex(8)
    service = PlatformService(str(broker), f"sqlite:///{tmp_path / 'store.db'}", port=0, admin_key=admin,
                              credentials=creds["platform"])
    with service:
        for tenant in ("alpha", "beta"):
            r = httpx.post(f"{service.url}/api/v1/tenants", json={"name": tenant},
                           headers={"Authorization": f"Bearer {admin}"})
            api = httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {r.json()['api_key']}"})
            api.post("/api/v1/devices", json=[{"id": f"{tenant[0]}1", "type": "electricity_meter"},
                                              {"id": f"{tenant[0]}-sw", "type": "switch"}]).raise_for_status()
            setattr(service, tenant, api)
        yield service, broker, creds


def _beta_publishes(broker, creds, count: int) -> None:
    beta = Client(broker, creds["beta"])
    for k in range(count):
        body = orjson.dumps({"v": 1, "readings": [{"dev": "b1", "ts": T0 + 1000 * k, "seq": k, "q": {V1: 230.0}}]})
        beta.mqtt.publish(topic("beta", TopicKind.TELEMETRY, "dia-b"), body, qos=1).wait_for_publish(5)
    beta.close()


def test_a_tenant_cannot_join_the_platform_group_nor_read_others(secured_platform):
    service, broker, creds = secured_platform
    alpha = Client(broker, creds["alpha"])
    refused = ["$share/ingest/gridloop/v1/+/telemetry/+", "$share/ingest/gridloop/v1/+/responses/+", "#",
               "$SYS/#", "gridloop/v1/beta/#", "gridloop/v1/+/telemetry/+", "$CONTROL/dynamic-security/v1"]
    assert alpha.subscribe(refused) == ["Not authorized"] * len(refused)
    _beta_publishes(broker, creds, 20)
    assert wait_for(lambda: service.beta.get("/api/v1/metrics").json()["readings_stored"] == 20, 10)
    time.sleep(0.3)
    assert alpha.got == []
    alpha.close()


def test_a_tenant_cannot_take_over_the_platform_client_ids(secured_platform):
    service, broker, creds = secured_platform
    worker = service.workers[0]
    predictable = f"gridloop-ingest-{service.instance}-0"  # the id without the platform's secret suffix
    assert worker.client_id != predictable and worker.client_id.startswith(predictable)
    intruders = [Client(broker, creds["alpha"], client_id=cid)
                 for cid in (predictable, f"gridloop-ingest-{service.instance}-commands")]
    _beta_publishes(broker, creds, 20)
    assert wait_for(lambda: service.beta.get("/api/v1/metrics").json()["readings_stored"] == 20, 10)
    assert worker.counters.disconnects == 0 and service.dispatcher.disconnects == 0
    for c in intruders:
        c.close()


def test_only_the_platform_sends_commands(secured_platform):
    service, broker, creds = secured_platform
    controller = Client(broker, creds["alpha"])  # the simulator controller runs on the tenant's account
    assert controller.subscribe([topic("alpha", TopicKind.COMMANDS, "+")]) == ["Granted QoS 1"]
    forged = orjson.dumps({"v": 1, "id": "forged", "ts": T0, "name": "switch.open", "args": {}, "expires": None})
    device = Client(broker, creds["alpha"])
    device.mqtt.publish(topic("alpha", TopicKind.COMMANDS, "a-sw"), forged, qos=1).wait_for_publish(5)
    r = service.alpha.post("/api/v1/devices/a-sw/commands", json={"name": "switch.open"})
    assert r.status_code == 202
    assert wait_for(lambda: len(controller.got) >= 1, 10)
    time.sleep(0.5)
    assert controller.got == [topic("alpha", TopicKind.COMMANDS, "a-sw")]  # the platform's, not the forged one
    for c in (controller, device):
        c.close()


def test_a_running_broker_learns_a_new_tenant(secured_broker):
    broker, creds = secured_broker
    user, password = DynsecControl(broker, creds["admin"]).add_tenant("gamma")
    gamma = Client(broker, (user, password))
    assert gamma.subscribe(["gridloop/v1/gamma/#", "gridloop/v1/alpha/#"]) == ["Granted QoS 1", "Not authorized"]
    gamma.close()
    with pytest.raises(ConnectionError):
        connect(broker, "g2", username="gamma", password="wrong", timeout_s=3)


def test_a_runs_own_broker_is_closed_and_has_accounts_for_the_run(tmp_path, mosquitto_binary):
    from gridloop.broker import EmbeddedBroker

    broker = EmbeddedBroker(workdir=str(tmp_path / "broker"), tenants=["demo"]).start()
    try:
        with pytest.raises(ConnectionError):
            connect(broker.address, "anonymous", timeout_s=3)
        tenant = Client(broker.address, broker.tenant_credentials["demo"])
        assert tenant.subscribe(["gridloop/v1/demo/#", "$share/ingest/gridloop/v1/+/telemetry/+"]) == [
            "Granted QoS 1", "Not authorized"]
        platform = Client(broker.address, broker.platform_credentials)
        assert platform.subscribe(["$share/ingest/gridloop/v1/+/telemetry/+"]) == ["Granted QoS 1"]
        for c in (tenant, platform):
            c.close()
    finally:
        broker.stop()
