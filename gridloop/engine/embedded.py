"""Embedded services for a run with no external ones: a loopback broker and the platform in a child process.

The platform runs as its own process (`gridloop platform serve`) so that the simulator can reach it
only over MQTT and REST, exactly as it would reach a remote deployment.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from gridloop.broker import free_port, stop_child


class EmbeddedPlatform:
    """`gridloop platform serve` as a child process on a free loopback port."""

    def __init__(self, broker_uri: str, store_uri: str, workdir: Path, ingest_workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_key = "adm_" + secrets.token_urlsafe(18)
        self._cmd = [
            sys.executable, "-m", "gridloop", "platform", "serve", "--broker", broker_uri, "--store", store_uri,
            "--host", "127.0.0.1", "--port", str(self.port), "--ingest-workers", str(ingest_workers),
        ]
        self._log_path = workdir / "platform.log"
        self._proc: subprocess.Popen | None = None

    def start(self) -> EmbeddedPlatform:
        env = {**os.environ, "GRIDLOOP_ADMIN_KEY": self.admin_key}
        log = self._log_path.open("ab")
        self._proc = subprocess.Popen(self._cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        return self

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        stop_child(self._proc, timeout_s=15)
        self._proc = None
