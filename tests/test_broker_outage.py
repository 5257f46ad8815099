"""Stop Mosquitto for 30 s in the middle of a real-time run: buffered, nothing is lost; unbuffered, data is lost."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from gridloop.broker import find_mosquitto, free_port, wait_port
from gridloop.engine.run import RunOptions, run_scenario
from gridloop.scenario.loader import parse_scenario

OUTAGE_S = 30.0


class RestartableMosquitto:
    """A Mosquitto with persistence, so that sessions and queued QoS 1 messages survive a restart."""

    def __init__(self, workdir) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {workdir}/\nmax_queued_messages 0\nmax_inflight_messages 1000\n"
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([find_mosquitto(), "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        assert wait_port("127.0.0.1", self.port, 10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _run_with_outage(tmp_path, name: str, dia_buffer: int) -> dict:
    if find_mosquitto() is None:
        pytest.fail("Mosquitto is needed for the broker-outage test")
    broker = RestartableMosquitto(tmp_path)
    broker.start()
    scenario = parse_scenario({
        "name": name, "seed": 11,
        "clock": {"start": "2026-01-15T08:00:00+01:00", "duration": "2h", "step": "1min",
                  "realtime": True, "speed": 120.0},  # 120 steps, one every 0.5 s: a 60 s run
        "grid": {"network": "1-LV-urban6--0-sw", "backend": "pgm"},
        "households": {"count": 50},
        "meters": {"interval": "1min", "dia_buffer_readings": dia_buffer, "events": False},
        "platform": {"tenant": "outage", "broker": f"mqtt://127.0.0.1:{broker.port}"},
        "outputs": {"progress": False, "plots": False, "series": False},
    }, "test")
    outage = threading.Timer(15.0, lambda: (broker.stop(), time.sleep(OUTAGE_S), broker.start()))
    outage.start()
    try:
        return run_scenario(scenario, RunOptions(out=tmp_path / "run"))
    finally:
        outage.join()
        broker.stop()


@pytest.mark.slow
def test_buffered_dia_loses_nothing_across_a_broker_outage(tmp_path):
    summary = _run_with_outage(tmp_path, "outage-buffered", dia_buffer=1_000_000)
    m = summary.messages
    assert m.readings_sampled == (50 + 1) * 120  # homes and the substation meter
    assert m.readings_stored == m.readings_sampled  # every sampled reading stored exactly once
    assert m.readings_lost == 0
    assert summary.links.dia_dropped == 0


@pytest.mark.slow
def test_unbuffered_dia_loses_the_outage(tmp_path):
    summary = _run_with_outage(tmp_path, "outage-unbuffered", dia_buffer=0)
    m = summary.messages
    dropped = summary.links.dia_dropped
    # about 30 s of a 60 s run at one sample per 0.5 s: ~60 of 120 sampling instants
    assert 50 * 40 <= dropped <= 50 * 80
    assert m.readings_lost >= dropped
    assert m.readings_stored == m.readings_sampled - m.readings_lost
