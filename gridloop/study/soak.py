"""A soak: a scenario runs in real time against a broker and a platform while faults are injected periodically —
the broker killed (SIGKILL, no persistence) and restarted, the store locked past its busy timeout, the platform
frozen, hostile payloads from another tenant — and at the end every reading the meters sampled is looked for in
the store. ``python benchmarks/soak.py --minutes 30`` (``tests/test_soak.py`` runs 3 minutes in CI)."""

from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gridloop.broker import find_mosquitto, free_port, wait_port
from gridloop.contract import BrokerAddress, TopicKind, topic
from gridloop.engine.run import RunOptions, run_scenario
from gridloop.mqtt_client import connect
from gridloop.scenario.loader import parse_scenario
from gridloop.sdk import PlatformClient

FAULTS = ("broker_kill", "store_lock", "platform_freeze", "fuzz")
HOSTILE = (b"{", b"[]", b'{"v":1,"readings":[{"dev":"x","ts":-1,"q":{}}]}', b"\xff\xfe", b'{"v":1,"readings":'
           + b"[" * 4000, b'{"v":1,"readings":[{"dev":"m00001","ts":9223372036854775808,"q":{"x":1e308}}]}')


@dataclass
class SoakResult:
    minutes: float
    sampled: int
    stored: int
    lost: int
    duplicates: int
    rejected: int
    faults: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        injected = ", ".join(f"{k} {v}" for k, v in self.faults.items())
        return (f"soak {self.minutes:g} min: sampled {self.sampled}, stored {self.stored}, lost {self.lost}, "
                f"duplicates {self.duplicates}, rejected {self.rejected} (faults: {injected})")


class _Broker:
    """Mosquitto without persistence: a kill loses all it held."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                             "max_queued_messages 0\nmax_inflight_messages 1000\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([find_mosquitto() or "mosquitto", "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port("127.0.0.1", self.port, 10):
            raise RuntimeError("mosquitto did not start")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


class _Injector(threading.Thread):
    """One fault every ``period_s``, in turn, until stopped; counts what it injected."""

    def __init__(self, broker: _Broker, platform: subprocess.Popen, store: Path, period_s: float, seed: int):
        super().__init__(name="soak-faults", daemon=True)
        self.broker, self.platform, self.store, self.period_s = broker, platform, store, period_s
        self.rng = random.Random(seed)
        self.counts = dict.fromkeys(FAULTS, 0)
        self.halt = threading.Event()

    def run(self) -> None:
        turn = 0
        while not self.halt.wait(self.period_s):
            fault = FAULTS[turn % len(FAULTS)]
            getattr(self, f"_{fault}")()
            self.counts[fault] += 1
            turn += 1

    def _broker_kill(self) -> None:
        self.broker.kill()
        self.halt.wait(self.rng.uniform(2.0, 8.0))
        self.broker.start()

    def _store_lock(self) -> None:
        locker = sqlite3.connect(self.store, timeout=10, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # longer than the store's busy timeout: ingest waits, acks nothing
        self.halt.wait(12.0)
        locker.execute("ROLLBACK")
        locker.close()

    def _platform_freeze(self) -> None:
        self.platform.send_signal(signal.SIGSTOP)
        self.halt.wait(self.rng.uniform(2.0, 6.0))
        self.platform.send_signal(signal.SIGCONT)

    def _fuzz(self) -> None:
        try:
            client = connect(BrokerAddress("127.0.0.1", self.broker.port), f"soak-fuzz-{secrets.token_hex(3)}")
        except ConnectionError:
            return
        for _ in range(200):
            client.publish(topic("intruder", TopicKind.TELEMETRY, "x"), self.rng.choice(HOSTILE), qos=1)
            client.publish(topic("soak", TopicKind.TELEMETRY, "dia-x"), self.rng.choice(HOSTILE), qos=1)
        client.disconnect()
        client.loop_stop()


def run_soak(minutes: float, workdir: Path, period_s: float = 20.0, seed: int = 3) -> SoakResult:
    """Run the soak in ``workdir``; the readings sampled, stored, lost and duplicated."""
    broker = _Broker(workdir)
    broker.start()
    admin, port, store = "adm_" + secrets.token_hex(6), free_port(), workdir / "store.db"
    platform = subprocess.Popen(
        [sys.executable, "-m", "gridloop", "platform", "serve", "--broker", f"mqtt://127.0.0.1:{broker.port}",
         "--store", f"sqlite:///{store}", "--port", str(port)], env={**os.environ, "GRIDLOOP_ADMIN_KEY": admin},
        stdout=subprocess.DEVNULL, stderr=(workdir / "platform.log").open("wb"))
    injector = None
    try:
        api = PlatformClient(f"http://127.0.0.1:{port}")
        api.wait_healthy(60)
        scenario = _scenario(minutes, broker.port, api.base_url, api.create_tenant("soak", admin), seed)
        injector = _Injector(broker, platform, store, period_s, seed)
        injector.start()
        summary = run_scenario(scenario, RunOptions(out=workdir / "run"))
    finally:
        if injector is not None:
            injector.halt.set()
            injector.join(60)
        platform.send_signal(signal.SIGCONT)
        platform.terminate()
        platform.wait(30)
        broker.kill()
    sampled = pd.read_parquet(workdir / "run" / "meter_readings.parquet")[["dev", "ts"]]
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT dev, ts FROM readings WHERE tenant='soak'").fetchall()
    stored = pd.DataFrame(rows, columns=["dev", "ts"])
    found = sampled.merge(stored.drop_duplicates(), on=["dev", "ts"], how="left", indicator=True)
    return SoakResult(minutes, len(sampled), len(stored), int((found["_merge"] == "left_only").sum()),
                      int(stored.duplicated().sum()), summary.messages.rejected, injector.counts)


def _scenario(minutes: float, broker_port: int, api_url: str, key: str, seed: int):
    return parse_scenario({
        "name": "soak", "seed": seed,
        "clock": {"start": "2026-01-15T17:00:00+01:00", "duration": f"{int(minutes * 30)}min", "step": "1min",
                  "realtime": True, "speed": 30.0},  # a simulated minute every 2 s
        "grid": {"network": "1-LV-urban6--0-sw", "backend": "pgm"},
        "households": {"count": 60},
        "meters": {"interval": "1min"},
        "platform": {"tenant": "soak", "broker": f"mqtt://127.0.0.1:{broker_port}", "api_url": api_url,
                     "api_key": key},
        "outputs": {"progress": False, "plots": False},
    }, "soak")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-clock length of the run")
    parser.add_argument("--period-s", type=float, default=20.0, help="seconds between injected faults")
    parser.add_argument("--dir", type=Path, help="work directory (default: a new temporary one)")
    args = parser.parse_args(argv)
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="gridloop-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = run_soak(args.minutes, workdir, args.period_s)
    print(result.line() + f" in {time.monotonic() - started:.0f} s; files in {workdir}")
    return 0 if result.lost == result.duplicates == 0 else 1
