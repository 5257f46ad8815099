"""A reference service as its own process beside a run: it knows only MQTT topics and REST paths."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from gridloop.broker import stop_child
from gridloop.broker_accounts import child_environment


class ServiceProcess:
    """``python -m gridloop.services.<name> --api … --broker … --tenant … <args>``; the key goes by environment."""

    def __init__(self, name: str, args: dict, api_url: str, api_key: str, broker: str, tenant: str,
                 run_dir: Path, credentials: tuple[str, str] | None = None) -> None:
        self.name = name
        self.log_path = run_dir / f"service-{name}.json"
        self.out_path = run_dir / f"service-{name}.log"
        self.cmd = [sys.executable, "-m", f"gridloop.services.{name}", "--api", api_url, "--broker", broker,
                    "--tenant", tenant, "--log", str(self.log_path)]
        for key, value in args.items():
            self.cmd += [f"--{key}", str(value)]
        self.env = child_environment(credentials, GRIDLOOP_API_KEY=api_key)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        out = self.out_path.open("ab")
        self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=self.env)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """A service prints one line when it has subscribed; wait for it (or its early death)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"service {self.name} exited: {self.out_path.read_text()[-800:]}")
            if self.out_path.exists() and self.out_path.stat().st_size > 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"service {self.name} did not start within {timeout_s} s")

    def stop(self) -> None:
        stop_child(self.proc, timeout_s=10)
