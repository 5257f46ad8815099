"""A reference service as its own process beside a run: it knows only MQTT topics and REST paths."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from gridloop.broker import stop_child
from gridloop.broker_accounts import child_environment

# the arguments of each service that name a device: in a run of several substations, each substation's own service
# gets its namespaced device (``s002-ss0``)
DEVICE_ARGUMENTS = {"demand_response": ("substation-meter",), "storage_peak_shaving": ("substation-meter", "battery")}


class ServiceProcess:
    """``python -m gridloop.services.<name> --api … --broker … --tenant … <args>``; the key goes by environment.

    ``substation``: the device namespace (``s002-``) of the one substation it serves in a run of several, and
    ``gateway`` that substation's DIA, whose readings alone it listens to."""

    def __init__(self, name: str, args: dict, api_url: str, api_key: str, broker: str, tenant: str,
                 run_dir: Path, credentials: tuple[str, str] | None = None, substation: str = "",
                 gateway: str | None = None) -> None:
        self.name = name
        label = f"{name}-{substation.rstrip('-')}" if substation else name
        self.log_path = run_dir / f"service-{label}.json"
        self.out_path = run_dir / f"service-{label}.log"
        self.cmd = [sys.executable, "-m", f"gridloop.services.{name}", "--api", api_url, "--broker", broker,
                    "--tenant", tenant, "--log", str(self.log_path)]
        if gateway:
            self.cmd += ["--gateway", gateway]
        for key, value in args.items():
            named = substation + str(value) if key in DEVICE_ARGUMENTS.get(name, ()) else value
            self.cmd += [f"--{key}", str(named)]
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
