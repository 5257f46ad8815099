"""A DIA over mqtts:// with mutual authentication, as in the pilot: a real Mosquitto TLS listener that
requires client certificates, and certificates made with openssl for this test."""

from __future__ import annotations

import shutil
import subprocess
import time

import numpy as np
import pytest

from gridloop.broker import find_mosquitto, free_port, wait_port
from gridloop.contract import BrokerAddress, topic
from gridloop.mqtt_client import TlsFiles, connect
from gridloop.virtual_meters.dia import DeviceIntegrationAdapter
from gridloop.virtual_meters.electricity import MeterSample


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_broker(tmp_path):
    if find_mosquitto() is None or shutil.which("openssl") is None:
        pytest.fail("Mosquitto and openssl are needed for the TLS test")
    d = tmp_path
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=gridloop test CA",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, cn in (("server", "127.0.0.1"), ("client", "dia-1")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-extfile", "san.ext", "-out", f"{name}.pem", cwd=d)
    port = free_port()
    conf = d / "mosquitto.conf"
    conf.write_text(f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\nrequire_certificate true\n"
                    f"cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n")
    proc = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_port("127.0.0.1", port, 10)
    yield BrokerAddress("127.0.0.1", port, tls=True), d
    proc.terminate()
    proc.wait(5)


def test_dia_publishes_with_a_client_certificate_and_is_refused_without(tls_broker):
    broker, d = tls_broker
    client_tls = TlsFiles(str(d / "ca.pem"), str(d / "client.pem"), str(d / "client.key"))
    got: list[bytes] = []
    listener = connect(broker, "listener", tls=client_tls, subscriptions=[(topic("t", "telemetry", "+"), 1)],
                       on_message=lambda c, u, m: got.append(m.payload))
    dia = DeviceIntegrationAdapter(broker, "t", "dia-1", tls=client_tls)
    dia.publish(MeterSample(1000, ["m1", "m2"], np.array([1, 1]), {"x": np.array([1.0, 2.0])}))
    assert dia.flush(10) and dia.readings_acknowledged == 2
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got and b'"dev":"m1"' in got[0]
    dia.close()
    listener.disconnect()
    listener.loop_stop()
    with pytest.raises(ConnectionError):  # no client certificate: the broker refuses the handshake
        connect(broker, "intruder", tls=TlsFiles(str(d / "ca.pem")), timeout_s=4)
