"""The platform a run starts beside itself: `gridloop platform serve` as a child process on loopback.

A process of its own, so the simulator reaches it only over MQTT and REST, exactly as it would reach a remote
deployment (the embedded broker's counterpart: gridloop/broker.py).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from pathlib import Path

from gridloop.broker import stop_child
from gridloop.broker_accounts import child_environment


class EmbeddedPlatform:
    """`gridloop platform serve` as a child process on a free loopback port."""

    def __init__(self, broker_uri: str, store_uri: str, workdir: Path, ingest_workers: int = 1,
                 credentials: tuple[str, str] | None = None) -> None:
        self._credentials = credentials  # the platform's broker account, if the broker has accounts
        self.admin_key = "adm_" + secrets.token_urlsafe(18)
        self._url_file = workdir / "platform.url"
        self.url = ""  # known once the child listens: wait_url()
        self._cmd = [
            sys.executable, "-m", "gridloop", "platform", "serve", "--broker", broker_uri, "--store", store_uri,
            "--host", "127.0.0.1", "--port", "0", "--url-file", str(self._url_file),
            "--ingest-workers", str(ingest_workers),
        ]
        self._log_path = workdir / "platform.log"
        self._proc: subprocess.Popen | None = None

    def start(self) -> EmbeddedPlatform:
        env = child_environment(self._credentials, GRIDLOOP_ADMIN_KEY=self.admin_key)
        if self._credentials:
            self._cmd += ["--mqtt-username", self._credentials[0]]
        log = self._log_path.open("ab")
        self._url_file.unlink(missing_ok=True)
        self._proc = subprocess.Popen(self._cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        return self

    def wait_url(self, timeout_s: float = 60.0) -> str:
        """The API's URL, once the child listens (it took a free port itself: no race for it)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._url_file.exists():
                self.url = self._url_file.read_text().strip()
                return self.url
            if self._proc is None or self._proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("embedded platform did not start:\n" + self.log_tail())

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM) without waiting; :meth:`stop` waits."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()

    def stop(self) -> None:
        stop_child(self._proc, timeout_s=15)
        self._proc = None
