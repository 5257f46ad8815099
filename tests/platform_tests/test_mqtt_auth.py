"""Per-tenant MQTT accounts enforced by a real Mosquitto: a tenant sees and writes only its own topics."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from gridloop.broker import find_mosquitto, free_port, wait_port
from gridloop.contract import BrokerAddress, topic
from gridloop.mqtt_client import connect
from gridloop.platform.mqtt_auth import MosquittoAuth


@pytest.fixture
def secured_broker(tmp_path):
    if find_mosquitto() is None:
        pytest.fail("Mosquitto is required for the ACL test")
    # pytest's tmp dirs are private to root; Mosquitto reads its files as the 'mosquitto' user
    auth_dir = Path(tempfile.mkdtemp(prefix="gridloop-auth-"))
    auth_dir.chmod(0o755)
    auth = MosquittoAuth(auth_dir)
    creds = {"alpha": auth.add_tenant("alpha"), "beta": auth.add_tenant("beta"), "platform": auth.add_platform()}
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(auth.mosquitto_conf(port))
    proc = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert wait_port("127.0.0.1", port, 10)
    yield BrokerAddress("127.0.0.1", port), creds
    proc.terminate()
    proc.wait(5)
    shutil.rmtree(auth_dir)


def _listener(broker, creds, name: str, sub: str):
    got: list[str] = []
    lock = threading.Lock()

    def on_message(c, u, msg):
        with lock:
            got.append(msg.topic)

    client = connect(broker, f"listen-{name}-{time.monotonic_ns()}", username=creds[0], password=creds[1],
                     subscriptions=[(sub, 1)], on_message=on_message)
    return client, got


def test_wrong_password_is_refused(secured_broker):
    broker, _creds = secured_broker
    with pytest.raises(ConnectionError):
        connect(broker, "intruder", username="alpha", password="guess", timeout_s=3)
    with pytest.raises(ConnectionError):
        connect(broker, "anonymous", timeout_s=3)


def test_tenant_reaches_only_its_own_topics(secured_broker):
    broker, creds = secured_broker
    platform, platform_got = _listener(broker, creds["platform"], "platform", "gridloop/v1/+/telemetry/+")
    alpha_sub, alpha_got = _listener(broker, creds["alpha"], "alpha", "gridloop/v1/#")
    beta_pub = connect(broker, "beta-dia", username=creds["beta"][0], password=creds["beta"][1])
    alpha_pub = connect(broker, "alpha-dia", username=creds["alpha"][0], password=creds["alpha"][1])
    time.sleep(0.3)
    beta_pub.publish(topic("beta", "telemetry", "dia"), b"{}", qos=1).wait_for_publish(3)
    info = alpha_pub.publish(topic("beta", "telemetry", "spoof"), b"{}", qos=1)  # alpha writing as beta
    info.wait_for_publish(3)
    alpha_pub.publish(topic("alpha", "telemetry", "dia"), b"{}", qos=1).wait_for_publish(3)
    time.sleep(0.5)
    assert sorted(platform_got) == ["gridloop/v1/alpha/telemetry/dia", "gridloop/v1/beta/telemetry/dia"]
    assert alpha_got == ["gridloop/v1/alpha/telemetry/dia"]  # nothing of beta's reaches alpha
    for c in (platform, alpha_sub, beta_pub, alpha_pub):
        c.disconnect()
        c.loop_stop()
    assert isinstance(info.rc, mqtt.MQTTErrorCode)
