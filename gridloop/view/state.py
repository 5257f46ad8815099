"""What the page shows of the loop, kept between frames: the latest step, meters' latest readings, events.

The step loop only hands over references (:meth:`LoopState.offer`, :meth:`LoopState.offer_samples`); the
hub's thread turns the latest of them into a frame, so a slow page or a busy hub never holds a step back.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import numpy as np
import orjson

from gridloop.contract import Quantity
from gridloop.view.commands import CommandTimeline

HISTORY_POINTS = 2000  # chart points kept for a page that opens late (every other one is dropped when full)
SHOWN_QUANTITIES = (Quantity.VOLTAGE_L1, Quantity.VOLTAGE_L2, Quantity.VOLTAGE_L3, Quantity.POWER_ACTIVE_TOTAL,
                    Quantity.ENERGY_ACTIVE_IMPORT)


@dataclass(frozen=True, slots=True)
class StepSnapshot:
    """One step's grid as the step loop handed it over (its own copies of the arrays)."""

    step: int
    sim_ms: int  # Unix ms of the step's start
    vm: np.ndarray  # per bus, pu (0: de-energised)
    loading: np.ndarray  # per line, then per transformer, percent
    lag_s: float | None  # how late the step started on the wall clock (real time only)
    max_lag_s: float = 0.0
    late_steps: int = 0


@dataclass(frozen=True, slots=True)
class SampleView:
    """A sample's readings: the meters it holds and their values per quantity."""

    ts_ms: int
    devices: list[str]
    quantities: dict[str, np.ndarray]


class LoopState:
    """The page's model of the run; frames are built on the hub's thread, never on the step loop's."""

    def __init__(self, steps_total: int, meters_total: int, commands: CommandTimeline,
                 events: Callable[[], list[dict]] = list, open_switches: Callable[[], list[str]] = list) -> None:
        """``events``, ``open_switches``: read on the hub's thread at each frame (injected so far, switches open)."""
        self.steps_total, self.meters_total = steps_total, meters_total
        self.commands, self._events, self._open_switches = commands, events, open_switches
        self.finished = False
        self._latest: StepSnapshot | None = None
        self._framed: StepSnapshot | None = None
        self._samples: deque[SampleView] = deque(maxlen=64)  # handed over, not yet merged (oldest dropped)
        self._lock = threading.Lock()
        self._by_devices: dict[tuple, tuple[dict[str, int], SampleView]] = {}  # latest sample of each meter set
        self._completeness: dict[str, float] = {}
        self.history: list[list[float | None]] = []
        self._frame_changed = True
        self._commands_seen = -1

    # -- from the step loop: references only, no waiting
    def offer(self, snapshot: StepSnapshot) -> None:
        self._latest = snapshot

    def offer_samples(self, samples: list[SampleView]) -> None:
        self._samples.extend(samples)

    def finish(self) -> None:
        self.finished = True
        self._frame_changed = True

    @property
    def sim_ms(self) -> int | None:
        latest = self._latest
        return None if latest is None else latest.sim_ms

    # -- on the hub's thread
    def set_completeness(self, ratios: dict[str, float]) -> None:
        with self._lock:
            self._completeness = ratios
        self._frame_changed = True

    def _merge_samples(self) -> None:
        while self._samples:
            sample = self._samples.popleft()
            key = (len(sample.devices), sample.devices[0], sample.devices[-1]) if sample.devices else None
            if key is None:
                continue
            with self._lock:
                known = self._by_devices.get(key)
                index = known[0] if known else {d: i for i, d in enumerate(sample.devices)}
                self._by_devices[key] = (index, sample)

    def frame(self) -> bytes | None:
        """The page's next frame, or None when nothing changed since the last one."""
        self._merge_samples()
        snap, commands = self._latest, self.commands.version
        if snap is None or (snap is self._framed and not self._frame_changed and commands == self._commands_seen):
            return None
        self._framed, self._frame_changed, self._commands_seen = snap, False, commands
        vm, loading = snap.vm, snap.loading
        point = chart_point(snap.sim_ms, vm, loading, snap.lag_s)
        if not self.history or self.history[-1][0] < snap.sim_ms:
            self.history.append(point)
            if len(self.history) > HISTORY_POINTS:
                self.history = self.history[::2]
        return orjson.dumps({
            "step": snap.step, "steps_total": self.steps_total, "sim_ms": snap.sim_ms, "finished": self.finished,
            "lag_s": snap.lag_s, "max_lag_s": snap.max_lag_s, "late_steps": snap.late_steps,
            "vm": np.round(vm.astype(np.float64), 4).tolist(),
            "loading": np.round(loading.astype(np.float64), 1).tolist(),
            "meters": self._meter_totals(), "commands": msgspec.to_builtins(self.commands.shown()),
            "events": self._events(),
            "open_switches": self._open_switches(),
            "point": point,
        }, option=orjson.OPT_SERIALIZE_NUMPY)

    def _meter_totals(self) -> dict:
        with self._lock:
            reporting = sum(len(index) for index, _ in self._by_devices.values())
            last = max((s.ts_ms for _, s in self._by_devices.values()), default=None)
            ratios = list(self._completeness.values())
        return {"total": self.meters_total, "reporting": reporting, "last_ts": last,
                "completeness": round(sum(ratios) / len(ratios), 4) if ratios else None}

    def meters(self, ids: list[str]) -> list[dict]:
        """The latest reading and the platform's completeness of each of these meters (a hovered bus's)."""
        with self._lock:
            found = list(self._by_devices.values())
            ratios = self._completeness
        out = []
        for meter in ids:
            row: dict = {"id": meter, "ts": None, "completeness": ratios.get(meter), "values": {}}
            for index, sample in found:
                i = index.get(meter)
                if i is not None and (row["ts"] is None or sample.ts_ms > row["ts"]):
                    row["ts"] = sample.ts_ms
                    row["values"] = {q: _num(v[i]) for q, v in sample.quantities.items() if q in SHOWN_QUANTITIES}
            out.append(row)
        return out


def chart_point(sim_ms: int, vm: np.ndarray, loading: np.ndarray, lag_s: float | None) -> list:
    """The chart's point of one step: [Unix ms, lowest and highest supplied bus voltage, highest loading, lag]."""
    energised = vm[vm > 0]
    return [int(sim_ms), _num(energised.min()) if energised.size else None,
            _num(energised.max()) if energised.size else None, _num(loading.max()) if loading.size else None, lag_s]


def _num(x) -> float | None:
    value = float(x)
    return None if np.isnan(value) else round(value, 4)
