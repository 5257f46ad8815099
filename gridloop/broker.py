"""An embedded MQTT broker on loopback: a Mosquitto child process when the binary exists, else amqtt.

Used by `gridloop run` when no broker is given, and by the tests.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from gridloop.broker_accounts import MosquittoAuth, find_dynsec_plugin
from gridloop.contract import BrokerAddress


def stop_child(proc: subprocess.Popen | None, timeout_s: float = 5.0) -> None:
    """Stop a child process politely (SIGTERM), and for good if it does not go within ``timeout_s``."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_child_port(proc: subprocess.Popen, host: str, port: int, timeout_s: float) -> bool:
    """True once ``proc`` listens on the port; False if it exits first (e.g. the port was taken) or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if wait_port(host, port, 0.2):
            return proc.poll() is None
    return False


def wait_port(host: str, port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None
    )


class EmbeddedBroker:
    """A broker that lives exactly as long as this object is started."""

    def __init__(self, port: int | None = None, workdir: str | None = None, prefer: str | None = None,
                 tenants: list[str] | None = None) -> None:
        """``tenants``: close the broker to anonymous clients and make accounts for this run — the platform's
        and one per tenant (``platform_credentials``, ``tenant_credentials``) — when Mosquitto and its
        dynamic-security plugin are here; otherwise (the amqtt fallback) it stays open, on loopback only."""
        prefer = prefer or os.environ.get("GRIDLOOP_EMBEDDED_BROKER", "mosquitto")
        self.host = "127.0.0.1"
        self._port_given = bool(port)
        self.port = port or free_port()
        self._workdir = Path(workdir or tempfile.mkdtemp(prefix="gridloop-broker-"))
        self._proc: subprocess.Popen | None = None
        self.kind = "mosquitto" if prefer == "mosquitto" and find_mosquitto() else "amqtt"
        self.platform_credentials: tuple[str, str] | None = None
        self.tenant_credentials: dict[str, tuple[str, str]] = {}
        self._accounts = None
        if tenants is not None and self.kind == "mosquitto" and find_dynsec_plugin():
            self._accounts = MosquittoAuth(self._workdir / "auth")
            self.platform_credentials = self._accounts.add_platform()
            self.tenant_credentials = {t: self._accounts.add_tenant(t) for t in tenants}

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress(self.host, self.port)

    @property
    def uri(self) -> str:
        return str(self.address)

    def start(self, attempt: int = 1) -> EmbeddedBroker:
        self._workdir.mkdir(parents=True, exist_ok=True)
        log = open(self._workdir / f"{self.kind}.log", "ab")  # noqa: SIM115 - the child owns it
        if self.kind == "mosquitto":
            conf = self._workdir / "mosquitto.conf"
            access = ("allow_anonymous true\n" if self._accounts is None else
                      self._accounts.mosquitto_conf(self.port, self.host).split("\n", 1)[1])
            conf.write_text(f"listener {self.port} {self.host}\n" + access + textwrap.dedent(f"""\
                user {getpass.getuser()}
                persistence true
                persistence_location {self._workdir}/
                autosave_interval 3600
                max_queued_messages 0
                max_inflight_messages 1000
                set_tcp_nodelay true
                log_dest stderr
                log_type error
                log_type warning
                """))
            cmd = [find_mosquitto() or "mosquitto", "-c", str(conf)]
        else:
            conf = self._workdir / "amqtt.yaml"
            conf.write_text(textwrap.dedent(f"""\
                listeners:
                  default:
                    type: tcp
                    bind: {self.host}:{self.port}
                plugins:
                  amqtt.plugins.authentication.AnonymousAuthPlugin:
                    allow_anonymous: true
                """))
            cmd = [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]
        self._proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        if not wait_child_port(self._proc, self.host, self.port, 15):
            self.stop()
            if self._port_given or attempt >= 3:
                raise RuntimeError(f"{self.kind} did not start on {self.uri}; see {self._workdir}")
            self.port = free_port()  # another process took the free port first: take another
            return self.start(attempt + 1)
        return self

    def stop(self) -> None:
        stop_child(self._proc)
        self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
