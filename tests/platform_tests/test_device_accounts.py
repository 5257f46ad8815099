"""A device's own broker account (password, or a client certificate whose CN is the account) enforced by a real
Mosquitto: tested by what the platform's account and the other device receive, not by return codes."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from gridloop.broker import find_mosquitto, free_port, wait_port
from gridloop.broker_accounts import DynsecControl, MosquittoAuth
from gridloop.contract import BrokerAddress, TopicKind, topic
from gridloop.mqtt_client import TlsFiles, connect, wait_for
from tests.platform_tests.test_mqtt_auth import Client


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certificates(d: Path, *names: str) -> None:
    """A CA, the broker's certificate (127.0.0.1) and one client certificate per name (its CN)."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=gridloop test CA",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, cn in (("server", "127.0.0.1"), *((n, n) for n in names)):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-extfile", "san.ext", "-out", f"{name}.pem", cwd=d)


@pytest.fixture
def device_broker(tmp_path):
    """Mosquitto with accounts: a password listener and a client-certificate listener."""
    if find_mosquitto() is None or shutil.which("openssl") is None:
        pytest.fail("Mosquitto and openssl are required for the device-account tests")
    d = Path(tempfile.mkdtemp(prefix="gridloop-devices-"))  # the broker's user must read it
    d.chmod(0o755)
    auth = MosquittoAuth(d)
    creds = {"platform": auth.add_platform(), "admin": auth.add_admin(), "alpha": auth.add_tenant("alpha"),
             "m1": auth.add_device("alpha", "m1"), "m2": auth.add_device("alpha", "m2")}
    _certificates(d, "alpha.m1", "mallory")
    for f in d.iterdir():
        f.chmod(0o644)
    plain, tls = free_port(), free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(auth.mosquitto_conf(plain) + auth.certificate_listener(
        tls, str(d / "ca.pem"), str(d / "server.pem"), str(d / "server.key")) + "persistence false\n")
    proc = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_port("127.0.0.1", plain, 10) and wait_port("127.0.0.1", tls, 10)
    yield BrokerAddress("127.0.0.1", plain), BrokerAddress("127.0.0.1", tls, tls=True), creds, d
    proc.terminate()
    proc.wait(5)
    shutil.rmtree(d)


def _tries(device: Client, own: str, other: str) -> None:
    """What a device's account may try: its own topic, another device's, a command, a subscription to all."""
    device.mqtt.publish(topic("alpha", TopicKind.TELEMETRY, own), b"own", qos=1).wait_for_publish(3)
    device.mqtt.publish(topic("alpha", TopicKind.TELEMETRY, other), b"spoof", qos=1).wait_for_publish(3)
    device.mqtt.publish(topic("alpha", TopicKind.COMMANDS, other), b"forged", qos=1).wait_for_publish(3)


def test_a_device_account_publishes_and_reads_only_its_own_topics(device_broker):
    broker, _tls, creds, _d = device_broker
    platform, m1, m2 = (Client(broker, creds[k]) for k in ("platform", "m1", "m2"))
    assert platform.subscribe(["gridloop/v1/+/+/+"]) == ["Granted QoS 1"]
    assert m1.subscribe([topic("alpha", TopicKind.COMMANDS, "m1"), topic("alpha", TopicKind.ACKS, "m1"),
                         "gridloop/v1/alpha/#", topic("alpha", TopicKind.COMMANDS, "m2"), "#"]) == [
        "Granted QoS 1", "Granted QoS 1", "Not authorized", "Not authorized", "Not authorized"]
    assert m2.subscribe([topic("alpha", TopicKind.COMMANDS, "m2")]) == ["Granted QoS 1"]
    _tries(m1, "m1", "m2")
    for dev in ("m1", "m2"):
        platform.mqtt.publish(topic("alpha", TopicKind.COMMANDS, dev), b"cmd", qos=1).wait_for_publish(3)
    assert wait_for(lambda: len(m2.got) >= 1 and len(m1.got) >= 1, 5)
    time.sleep(0.5)
    # m1's spoof of m2 and its forged command never arrived (the platform sees its own two commands echoed)
    assert sorted(platform.got) == sorted([topic("alpha", TopicKind.TELEMETRY, "m1"),
                                           topic("alpha", TopicKind.COMMANDS, "m1"),
                                           topic("alpha", TopicKind.COMMANDS, "m2")])
    assert m2.got == [topic("alpha", TopicKind.COMMANDS, "m2")]  # only the platform's command, not m1's forgery
    assert m1.got == [topic("alpha", TopicKind.COMMANDS, "m1")]
    for c in (platform, m1, m2):
        c.close()


def test_a_client_certificate_is_the_device_account(device_broker):
    broker, tls, creds, d = device_broker
    platform = Client(broker, creds["platform"])
    assert platform.subscribe(["gridloop/v1/+/telemetry/+", "gridloop/v1/+/commands/+"]) == ["Granted QoS 1"] * 2
    by_cert = {cn: Client(tls, None, client_id=f"cert-{cn}",
                          tls=TlsFiles(str(d / "ca.pem"), str(d / f"{cn}.pem"), str(d / f"{cn}.key")))
               for cn in ("alpha.m1", "mallory")}  # mallory's certificate is valid, but no account has that name
    assert by_cert["alpha.m1"].subscribe([topic("alpha", TopicKind.COMMANDS, "m1"), "gridloop/v1/alpha/#"]) == [
        "Granted QoS 1", "Not authorized"]
    assert by_cert["mallory"].subscribe([topic("alpha", TopicKind.COMMANDS, "m1")]) == ["Not authorized"]
    _tries(by_cert["alpha.m1"], "m1", "m2")
    _tries(by_cert["mallory"], "m1", "m2")
    assert wait_for(lambda: len(platform.got) >= 1, 5)
    time.sleep(0.5)
    assert platform.got == [topic("alpha", TopicKind.TELEMETRY, "m1")]  # one, from the certificate of alpha.m1
    with pytest.raises(ConnectionError):  # no certificate: refused at the handshake
        connect(tls, "no-cert", tls=TlsFiles(str(d / "ca.pem")), timeout_s=4)
    for c in (platform, *by_cert.values()):
        c.close()


def test_a_running_broker_learns_a_new_device(device_broker):
    broker, _tls, creds, _d = device_broker
    user, password = DynsecControl(broker, creds["admin"]).add_device("alpha", "m9")
    assert user == "alpha.m9"
    m9 = Client(broker, (user, password))
    assert m9.subscribe([topic("alpha", TopicKind.COMMANDS, "m9"), topic("alpha", TopicKind.COMMANDS, "m1")]) == [
        "Granted QoS 1", "Not authorized"]
    m9.close()
    with pytest.raises(ValueError):
        DynsecControl(broker, creds["admin"]).add_device("alpha", "bad/name")
