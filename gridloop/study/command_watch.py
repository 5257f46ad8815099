"""Command round trip of a service in the loop: REST accepted → executed in the grid → visible in readings.

The platform keeps each command's lifecycle with wall-clock times (``history``: pending = accepted by its REST
API, executed = the simulator's answer after applying it at a step). When it became *visible in readings* is
nobody's record, so a watcher polls the point's store read-only: for every device that has a command, the wall
time each new reading of it was first seen committed. After the run, the simulator's own log (``commands.json``:
the simulated time each command was applied) names the first reading that shows it: that device's first reading
at or after that instant.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from gridloop.contract import CommandStatus


@dataclass
class _Seen:
    """A device's readings in commit order: their timestamps and the wall time (ms) each was first seen."""

    ts: list[int] = field(default_factory=list)
    wall_ms: list[int] = field(default_factory=list)

    def add(self, ts: int, wall_ms: int) -> None:
        i = bisect.bisect_left(self.ts, ts)
        if i < len(self.ts) and self.ts[i] == ts:
            return
        self.ts.insert(i, ts)
        self.wall_ms.insert(i, wall_ms)

    def first_at_or_after(self, ts: int) -> int | None:
        """Wall ms the device's first reading at or after ``ts`` was seen; None if none was."""
        i = bisect.bisect_left(self.ts, ts)
        return min(self.wall_ms[i:]) if i < len(self.ts) else None


@dataclass(frozen=True)
class RoundTrips:
    """Per executed command, in ms: accepted → executed, accepted → visible; and what could not be timed."""

    executed_ms: list[float]
    visible_ms: list[float]
    submitted: int
    not_visible: int  # executed, but no later reading of the device was seen committed

    def percentiles(self) -> dict[str, float | int | None]:
        def pct(values: list[float], q: float) -> float | None:
            return round(float(np.percentile(values, q)), 1) if values else None

        return {"commands_submitted": self.submitted, "commands_timed": len(self.visible_ms),
                "commands_not_visible": self.not_visible,
                "command_executed_p50_ms": pct(self.executed_ms, 50),
                "command_executed_p95_ms": pct(self.executed_ms, 95),
                "command_round_trip_p50_ms": pct(self.visible_ms, 50),
                "command_round_trip_p95_ms": pct(self.visible_ms, 95)}


class CommandWatcher(threading.Thread):
    """Polls the store file for commands and for new readings of the devices they target."""

    def __init__(self, store_path: Path, tenant: str, poll_s: float = 0.1) -> None:
        super().__init__(name="study-command-watch", daemon=True)
        self.store_path, self.tenant, self.poll_s = store_path, tenant, poll_s
        self.commands: dict[str, tuple[str, list]] = {}  # id -> (device, history)
        self.seen: dict[str, _Seen] = {}
        self._last: dict[str, int] = {}  # device -> newest reading ts seen
        self._updated = -1
        self._halt = threading.Event()

    def run(self) -> None:
        db = None
        while not self._halt.is_set():
            if db is None and self.store_path.exists():
                db = sqlite3.connect(f"file:{self.store_path}?mode=ro", uri=True, timeout=5)
            if db is not None:
                with contextlib.suppress(sqlite3.OperationalError):  # no schema yet, or the file is busy: next time
                    self._poll(db)
            self._halt.wait(self.poll_s)
        if db is not None:
            with contextlib.suppress(sqlite3.OperationalError):
                self._poll(db)  # the last commands' final statuses
            db.close()

    def _poll(self, db: sqlite3.Connection) -> None:
        rows = db.execute("SELECT id, device, history, updated FROM commands WHERE tenant=? AND updated>=?",
                          (self.tenant, self._updated)).fetchall()
        for cid, device, history, updated in rows:
            self.commands[cid] = (device, orjson.loads(history))
            self._updated = max(self._updated, updated)
        now_ms = time.time_ns() // 1_000_000
        for device in {d for d, _ in self.commands.values()}:
            last = self._last.get(device)
            if last is None:  # from now on; the newest reading already there counts as seen now
                found = db.execute("SELECT max(ts) FROM readings WHERE tenant=? AND dev=?",
                                   (self.tenant, device)).fetchall()
            else:
                found = db.execute("SELECT ts FROM readings WHERE tenant=? AND dev=? AND ts>?",
                                   (self.tenant, device, last)).fetchall()
            seen = self.seen.setdefault(device, _Seen())
            for (ts,) in found:
                if ts is not None:
                    seen.add(ts, now_ms)
                    self._last[device] = max(ts, self._last.get(device, ts))
            self._last.setdefault(device, -1)

    def stop(self, grace_s: float = 3.0) -> None:
        """Keep watching ``grace_s`` more (the last readings land), then stop."""
        time.sleep(grace_s)
        self._halt.set()
        self.join(timeout=10)

    def round_trips(self, applied: list[dict], start_ms: int) -> RoundTrips:
        """``applied``: the simulator's log entries (id, device, sim_time_s since the scenario start)."""
        executed, visible, not_visible = [], [], 0
        for entry in applied:
            known = self.commands.get(entry["id"])
            if known is None:
                continue
            device, history = known
            at = {status: ts for status, ts in history}
            accepted, done = at.get(CommandStatus.PENDING), at.get(CommandStatus.EXECUTED)
            if accepted is None or done is None:
                continue
            executed.append(float(done - accepted))
            shown = self.seen.get(device, _Seen()).first_at_or_after(start_ms + int(round(entry["sim_time_s"] * 1000)))
            if shown is None:
                not_visible += 1
            else:
                visible.append(float(max(shown, done) - accepted))
        return RoundTrips(executed, visible, len(self.commands), not_visible)


def applied_commands(run_dir: Path) -> list[dict]:
    """The simulator's log of applied commands of a run, partitioned or not (``commands.json`` files)."""
    entries: dict[str, dict] = {}
    for path in sorted(run_dir.glob("**/commands.json")):
        for entry in json.loads(path.read_text()):
            entries.setdefault(entry["id"], entry)
    return list(entries.values())
