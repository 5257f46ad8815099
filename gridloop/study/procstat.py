"""CPU time and memory of a process from /proc (Linux), so the study needs no extra dependency."""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcSample:
    """Cumulative CPU seconds (user + system), resident and peak-resident memory in bytes."""

    cpu_s: float
    rss_bytes: int
    peak_rss_bytes: int


def sample(pid: int) -> ProcSample | None:
    """The process's counters now, or None once it has gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            stat = fh.read()
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            status = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    cpu = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    kb = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines()
          if line.startswith(("VmRSS:", "VmHWM:"))}
    return ProcSample(cpu, kb.get("VmRSS", 0) * 1024, kb.get("VmHWM", 0) * 1024)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), from /proc's per-thread children lists."""
    out: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except (FileNotFoundError, ProcessLookupError):
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", encoding="ascii") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
            out += kids
            todo += kids
    return out
