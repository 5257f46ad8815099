"""The run's progress bar on the terminal: steps done, elapsed and remaining time."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextlib.contextmanager
def step_progress(enabled: bool, total: int, name: str) -> Iterator[Callable[[], None]]:
    """A function to call once a step (it does nothing when ``enabled`` is false)."""
    if not enabled:
        yield lambda: None
        return
    with Progress(TextColumn(f"[bold]{name}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                  TimeElapsedColumn(), TimeRemainingColumn(), transient=False) as progress:
        task = progress.add_task(name, total=total)
        yield lambda: progress.advance(task)
