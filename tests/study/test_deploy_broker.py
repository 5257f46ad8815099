"""deploy/mosquitto.conf run for real (paths and ports swapped to a temporary directory): closed to anonymous
clients, the accounts made by `gridloop broker accounts` and `gridloop tenant create --broker` work on both
listeners, the TLS one included, and a tenant cannot join the platform's group."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from gridloop.broker import free_port, wait_port
from gridloop.broker_accounts import ADMIN_USER, PLATFORM_USER, find_dynsec_plugin
from gridloop.cli import main
from gridloop.contract import BrokerAddress
from gridloop.mqtt_client import TlsFiles, connect, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certs(d: Path) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=gridloop test CA",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
             "-out", "server.csr", cwd=d)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=demo.m1", "-keyout", "demo.m1.key",
             "-out", "demo.m1.csr", cwd=d)  # a device's certificate: its CN is its account
    _openssl("x509", "-req", "-in", "demo.m1.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-out", "demo.m1.crt", cwd=d)
    for f in d.iterdir():
        f.chmod(0o644)


@pytest.fixture
def deployed_broker(tmp_path, mosquitto_binary):
    if shutil.which("openssl") is None or find_dynsec_plugin() is None:
        pytest.fail("openssl and Mosquitto's dynamic-security plugin are needed")
    work = Path(tempfile.mkdtemp(prefix="gridloop-deploy-"))  # Mosquitto drops to its own user: not pytest's tmp
    work.chmod(0o755)
    (work / "certs").mkdir(mode=0o755)
    _certs(work / "certs")
    assert main(["broker", "accounts", str(work / "auth")]) == 0
    plain, tls, cert = free_port(), free_port(), free_port()
    swaps = {"/mosquitto/auth/": f"{work}/auth/", "/mosquitto/certs/": f"{work}/certs/",
             "/mosquitto/data/": f"{work}/", "/usr/lib/mosquitto_dynamic_security.so": find_dynsec_plugin(),
             "listener 1883 0.0.0.0": f"listener {plain} 127.0.0.1",
             "listener 8883 0.0.0.0": f"listener {tls} 127.0.0.1",
             "listener 8884 0.0.0.0": f"listener {cert} 127.0.0.1"}
    conf = (ROOT / "deploy" / "mosquitto.conf").read_text()
    for old, new in swaps.items():
        assert old in conf, old
        conf = conf.replace(old, new)
    (work / "mosquitto.conf").write_text(conf)
    proc = subprocess.Popen([mosquitto_binary, "-c", str(work / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert wait_port("127.0.0.1", plain, 10) and wait_port("127.0.0.1", tls, 10) and wait_port("127.0.0.1", cert, 10)
    yield work, BrokerAddress("127.0.0.1", plain), BrokerAddress("127.0.0.1", tls, tls=True), \
        BrokerAddress("127.0.0.1", cert, tls=True)
    proc.terminate()
    proc.wait(5)
    shutil.rmtree(work)


def test_the_shipped_broker_config_is_closed_and_its_accounts_work(deployed_broker, tmp_path, monkeypatch, capsys):
    work, plain, tls, _cert = deployed_broker
    with pytest.raises(ConnectionError):
        connect(plain, "anonymous", timeout_s=3)
    platform = (PLATFORM_USER, (work / "auth" / "platform.password").read_text().strip())
    monkeypatch.setenv("GRIDLOOP_BROKER_ADMIN_PASSWORD_FILE", str(work / "auth" / "admin.password"))
    assert (work / "auth" / "admin.password").stat().st_mode & 0o077 == 0  # the secrets are the owner's only
    assert main(["tenant", "create", "demo", "--store", f"sqlite:///{tmp_path / 'p.db'}", "--broker", str(plain)]) == 0
    mqtt = json.loads(capsys.readouterr().out)["mqtt"]
    granted: dict[str, list[str]] = {}
    for name, (address, user, password) in {
        "platform": (plain, *platform), "tenant-tls": (tls, mqtt["username"], mqtt["password"]),
    }.items():
        client = connect(address, f"t-{name}", username=user, password=password,
                         tls=TlsFiles(str(work / "certs" / "ca.crt")) if address.tls else None)
        client.on_subscribe = lambda c, u, mid, codes, props, name=name: granted.setdefault(
            name, [str(x) for x in codes])
        client.subscribe([("$share/ingest/gridloop/v1/+/telemetry/+", 1), ("gridloop/v1/demo/commands/+", 1)])
        assert wait_for(lambda name=name: name in granted, 5)
        client.disconnect()
        client.loop_stop()
    assert granted == {"platform": ["Granted QoS 1", "Granted QoS 1"],
                       "tenant-tls": ["Not authorized", "Granted QoS 1"]}
    assert mqtt["username"] != ADMIN_USER


def test_the_shipped_certificate_listener_takes_a_device_certificate_as_its_account(deployed_broker, capsys,
                                                                                    monkeypatch):
    work, plain, _tls, cert = deployed_broker
    monkeypatch.setenv("GRIDLOOP_BROKER_ADMIN_PASSWORD_FILE", str(work / "auth" / "admin.password"))
    assert main(["device", "account", "demo", "m1", "--broker", str(plain)]) == 0
    assert json.loads(capsys.readouterr().out)["mqtt"]["username"] == "demo.m1"
    certs = work / "certs"
    device = connect(cert, "m1-by-cert", tls=TlsFiles(str(certs / "ca.crt"), str(certs / "demo.m1.crt"),
                                                      str(certs / "demo.m1.key")))
    granted: list[str] = []
    device.on_subscribe = lambda c, u, mid, codes, props: granted.extend(str(x) for x in codes)
    device.subscribe([("gridloop/v1/demo/commands/m1", 1), ("gridloop/v1/demo/commands/m2", 1)])
    assert wait_for(lambda: len(granted) == 2, 5)
    assert granted == ["Granted QoS 1", "Not authorized"]  # its account's role, by its certificate's CN
    device.disconnect()
    device.loop_stop()
    with pytest.raises(ConnectionError):  # a password alone does not open the certificate listener
        connect(cert, "no-cert", username="demo.m1", password="x", tls=TlsFiles(str(certs / "ca.crt")), timeout_s=4)
