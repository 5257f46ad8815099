"""The real broker and platform a study point runs against, started here so their processes can be measured."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from gridloop.broker import find_mosquitto, free_port, wait_port
from gridloop.sdk import PlatformClient

PROBE_DEVICE = "study-probe"


class StudyServices(contextlib.ExitStack):
    """Mosquitto and `gridloop platform serve` (SQLite store in the point's directory) as child processes."""

    def __init__(self, workdir: Path, tenant: str, ingest_workers: int = 1,
                 restore: Callable[[Path], dict] | None = None) -> None:
        """``restore(store_path)`` fills the new store file before the platform opens it (a database restore,
        e.g. gridloop.study.history); what it returns is kept as ``restored``."""
        super().__init__()
        self.workdir = workdir
        self.tenant = tenant
        self.ingest_workers = ingest_workers
        self.store_path = (workdir / "store.db").resolve()
        self.broker_port = free_port()
        self.broker_uri = f"mqtt://127.0.0.1:{self.broker_port}"
        self.api_url = ""  # known once the platform listens on the port it took
        self.admin_key = "adm_" + secrets.token_urlsafe(18)
        self.api_key = ""
        self.pids: dict[str, int] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        self.restore = restore
        self.restored: dict = {}

    def __enter__(self) -> StudyServices:
        super().__enter__()
        self.workdir.mkdir(parents=True, exist_ok=True)
        for old in self.workdir.glob("store.db*"):
            old.unlink()
        if self.restore is not None:  # before any process of the point runs: the harness restores a database
            self.restored = self.restore(self.store_path)
        mosquitto = find_mosquitto()
        if mosquitto is None:
            raise RuntimeError("a study measures the real broker: install Mosquitto (mosquitto binary not found)")
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(textwrap.dedent(f"""\
            listener {self.broker_port} 127.0.0.1
            allow_anonymous true
            persistence false
            max_queued_messages 0
            max_inflight_messages 1000
            set_tcp_nodelay true
            log_dest stderr
            log_type error
            """))
        self.pids["broker"] = self._spawn("broker", [mosquitto, "-c", str(conf)])
        if not wait_port("127.0.0.1", self.broker_port, 15):
            raise RuntimeError(f"mosquitto did not start; see {self.workdir / 'broker.log'}")
        (self.workdir / "platform.url").unlink(missing_ok=True)
        self.pids["platform"] = self._spawn("platform", [
            sys.executable, "-m", "gridloop", "platform", "serve", "--broker", self.broker_uri,
            "--store", f"sqlite:///{self.store_path}", "--host", "127.0.0.1", "--port", "0",
            "--url-file", str(self.workdir / "platform.url"), "--ingest-workers", str(self.ingest_workers)])
        self.api_url = _wait_url(self.workdir / "platform.url", self._procs["platform"])
        admin = PlatformClient(self.api_url)
        try:
            admin.wait_healthy(60)
            self.api_key = admin.create_tenant(self.tenant, self.admin_key)
        finally:
            admin.close()
        client = PlatformClient(self.api_url, self.api_key)
        try:  # the latency probe publishes as its own device; no interval, so completeness ignores it
            client.provision([{"id": PROBE_DEVICE, "type": "electricity_meter", "phases": 1}])
        finally:
            client.close()
        return self

    def _spawn(self, name: str, cmd: list[str]) -> int:
        log = (self.workdir / f"{name}.log").open("ab")
        self.callback(log.close)
        env = {**os.environ, "GRIDLOOP_ADMIN_KEY": self.admin_key}
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        self._procs[name] = proc
        self.callback(_stop, proc)
        return proc.pid

    def store_bytes(self) -> int:
        """Size of the SQLite store with its write-ahead log."""
        return sum(p.stat().st_size for p in self.workdir.glob("store.db*") if p.is_file())


def _wait_url(path: Path, proc: subprocess.Popen, timeout_s: float = 60.0) -> str:
    """The platform's URL once it listens; RuntimeError at once if it exits first (see its log)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists():
            return path.read_text().strip()
        time.sleep(0.05)
    why = "it exited" if proc.poll() is not None else f"not within {timeout_s:.0f} s"
    raise RuntimeError(f"the platform (pid {proc.pid}) did not listen ({why}); see {path.parent / 'platform.log'}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
