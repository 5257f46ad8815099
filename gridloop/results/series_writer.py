"""The run's recorded series (Parquet) and feeder plot, written in a thread of their own beside the platform."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from gridloop.results.plots import pyplot
from gridloop.results.recorder import RunRecorder
from gridloop.results.report import write_series
from gridloop.scenario.model import Scenario


class SeriesWriter:
    """Writes the recorded series (Parquet) and the feeder plot in a thread of its own. Made as the run starts, the
    thread first loads the libraries it writes with while the platform boots (:meth:`loaded` waits for that before
    the loop, so it never runs beside the steps); :meth:`write`, once the loop has ended, hands it the series, and
    the run meanwhile waits for the platform to store the last readings and to stop."""

    def __init__(self, s: Scenario) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="series")
        self._loading = self._pool.submit(_load_writers, s.outputs.series, s.outputs.plots)
        self._done: Future | None = None

    def loaded(self) -> None:
        self._loading.result()

    def write(self, sections: list[tuple[str, bool, RunRecorder, int]], run_dir: Path, s: Scenario) -> None:
        """``sections``: per grid section its name, whether its ids are prefixed, its recorder and its meters."""
        self._done = self._pool.submit(write_series, sections, run_dir, s)
        self.close()  # the thread ends with its last task

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def files(self) -> list[str]:
        """The files written (once they are), or the writer's exception."""
        if self._done is None:
            raise RuntimeError("SeriesWriter.files() before write()")
        return self._done.result()


def _load_writers(series: bool, plots: bool) -> None:
    """Import what writing the series (pyarrow's Parquet) and the plot (matplotlib, ~0.4 s) needs."""
    if series:
        import pyarrow.parquet  # noqa: F401
    if plots:
        pyplot()
