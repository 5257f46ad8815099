"""The hub: one thread makes at most ``max_hz`` frames a second and wakes every open page's event stream.

Each page keeps only the newest frame: a page that reads slowly skips frames instead of queueing them, and
nothing the pages do reaches the step loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gridloop.view.state import LoopState

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Subscription:
    """One open event stream: woken on its own event loop when a newer frame is there."""

    loop: asyncio.AbstractEventLoop
    event: asyncio.Event = field(default_factory=asyncio.Event)
    seen: int = 0  # the last frame version it sent


@dataclass
class Chore:
    """Work the hub's thread does every ``period_s`` besides framing (reading the platform's records).

    ``spend``: at most this share of the time goes to it; a chore that grows slow (a query over a growing
    store) is run less often, so the view's reads never come to compete with the run for the machine.
    """

    period_s: float
    run: Callable[[], None]
    spend: float = 1.0
    due: float = 0.0


class FrameHub:
    """Frames the loop's state at a bounded rate and fans the newest frame out to the subscribers."""

    def __init__(self, state: LoopState, max_hz: float = 4.0, chores: list[Chore] | None = None) -> None:
        self.state, self.period_s, self.chores = state, 1.0 / max_hz, chores or []
        self.latest: bytes = b""
        self.version = 0
        self.frames_made = 0
        self.closed = False  # set once the last frame is out: streams end
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="view-hub", daemon=True)

    def start(self) -> FrameHub:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.tick(started)
            self._stop.wait(max(0.0, self.period_s - (time.monotonic() - started)))
        self.tick(time.monotonic(), chores=True)  # the last state (finished) reaches the pages
        self.closed = True
        self.publish(self.latest)  # wakes every stream, which then ends

    def tick(self, now: float, chores: bool = True) -> None:
        """Do the chores that are due, then frame the state if it changed."""
        if chores:
            for chore in self.chores:
                if now >= chore.due:
                    started = time.monotonic()
                    try:
                        chore.run()
                    except Exception:  # the page is a bystander: a failed chore must not end the hub
                        log.exception("live view: %s failed", getattr(chore.run, "__name__", chore.run))
                    took = time.monotonic() - started
                    chore.due = started + max(chore.period_s, took / chore.spend)
        frame = self.state.frame()
        if frame is not None:
            self.publish(frame)

    def publish(self, frame: bytes) -> None:
        with self._lock:
            self.latest, self.version = frame, self.version + 1
            self.frames_made += 1
            subs = list(self._subs)
        for sub in subs:
            with contextlib.suppress(RuntimeError):  # its event loop is closing
                sub.loop.call_soon_threadsafe(sub.event.set)

    def subscribe(self) -> Subscription:
        sub = Subscription(asyncio.get_running_loop())
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
