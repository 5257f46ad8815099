"""The step loop's hand-over never waits, frames are capped at the hub's rate, and a slow page gets the newest one.

A real hub and the real app on loopback; an HTTP client reads the event stream slowly while steps pour in.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import numpy as np

from gridloop.view.app import create_view_app
from gridloop.view.commands import CommandTimeline
from gridloop.view.hub import FrameHub
from gridloop.view.server import ViewServer
from gridloop.view.state import LoopState, SampleView, StepSnapshot
from gridloop.view.topology import BusDrawing, Topology

N_BUS, N_METERS, STEPS = 2_000, 10_000, 3_000


def _topology() -> Topology:
    buses = [BusDrawing(f"b{i}", float(i % 1000), float(i // 1000), 0.4) for i in range(N_BUS)]
    return Topology("s", "radial", buses, [], [], {7: ["m7", "m10007"]}, 0)


def _slow_reader(url: str, frames: list[dict], stop: threading.Event) -> None:
    """A page on a slow link: it takes 0.3 s to take in each frame."""
    with httpx.Client(timeout=30) as client, client.stream("GET", url + "events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                frames.append(json.loads(line[6:]))
                if frames[-1]["finished"] or stop.is_set():
                    return
                time.sleep(0.3)


def test_steps_are_handed_over_without_waiting_and_frames_coalesce():
    state = LoopState(STEPS, N_METERS, CommandTimeline())
    hub = FrameHub(state, max_hz=4.0).start()
    server = ViewServer(create_view_app(hub, state, _topology(), {"name": "t", "mode": "live"})).start()
    frames: list[dict] = []
    stop = threading.Event()
    reader = threading.Thread(target=_slow_reader, args=(server.url, frames, stop))
    try:
        reader.start()
        devices = [f"m{i}" for i in range(N_METERS)]
        rng = np.random.default_rng(1)
        waits = []
        started = time.monotonic()
        for step in range(1, STEPS + 1):  # as fast as a step loop can go, with 10,000 meters' readings every step
            vm = rng.uniform(0.95, 1.05, N_BUS).astype(np.float32)
            sample = SampleView(step * 1000, devices, {"electricity.voltage.l1": rng.uniform(220, 240, N_METERS)})
            t0 = time.perf_counter()
            state.offer(StepSnapshot(step, step * 1000, vm, np.zeros(0, np.float32), 0.0))
            state.offer_samples([sample])
            waits.append(time.perf_counter() - t0)
            time.sleep(0.0005)
        elapsed = time.monotonic() - started
        time.sleep(0.6)
        state.finish()
        reader.join(timeout=20)
        answer = httpx.get(server.url + "api/bus/7").json()
    finally:
        stop.set()
        hub.stop()
        server.stop()
    # no lock, no queue to wait on: only the interpreter's own thread switches (5 ms each) can show in the tail
    assert float(np.percentile(waits, 99)) < 1e-3 and float(np.mean(waits)) < 50e-6, "the hand-over waited"
    assert hub.frames_made <= 4 * (elapsed + 1.2) + 3, "frames are capped at the hub's rate"
    assert 2 <= len(frames) < hub.frames_made, "a slow page skips frames instead of queueing them"
    assert frames[-1]["finished"] and frames[-1]["step"] == STEPS, "the newest frame reaches the page"
    assert frames[-1]["meters"]["reporting"] == N_METERS
    assert [m["id"] for m in answer["meters"]] == ["m7", "m10007"]
    assert answer["meters"][0]["values"]["electricity.voltage.l1"] > 200 and answer["meters"][1]["ts"] is None
