"""Records grid results every step and meter readings every sample; writes them as Parquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gridloop.grid_models.base import GridState
from gridloop.grid_models.grid_stage import GridOutput
from gridloop.results.kpis import KpiRecorder, time_index
from gridloop.stage import Clock, Outputs
from gridloop.virtual_meters.electricity import MeterSample, by_columns


class RunRecorder:
    """Column-wise buffers, turned into DataFrames once at the end (no per-step pandas)."""

    def __init__(self, bus_names: list[str], line_names: list[str], trafo_names: list[str]) -> None:
        self.bus_names = bus_names
        self.line_names = line_names
        self.trafo_names = trafo_names
        self.times: list[int] = []  # Unix ms of each step
        self._vm: list[np.ndarray] = []
        self._line: list[np.ndarray] = []
        self._trafo: list[np.ndarray] = []
        self._samples: list[MeterSample] = []

    def record_step(self, when: int, state: GridState) -> None:
        self.times.append(when)
        self._vm.append(state.bus_vm_pu.astype(np.float32))
        self._line.append(state.line_loading_percent.astype(np.float32))
        self._trafo.append(state.trafo_loading_percent.astype(np.float32))

    def record_sample(self, sample: MeterSample) -> None:
        self._samples.append(sample)

    def bus_voltages(self) -> pd.DataFrame:
        return pd.DataFrame(np.vstack(self._vm), index=time_index(self.times),
                            columns=self.bus_names)

    def line_loading(self) -> pd.DataFrame:
        return pd.DataFrame(np.vstack(self._line), index=time_index(self.times),
                            columns=self.line_names)

    def trafo_loading(self) -> pd.DataFrame:
        return pd.DataFrame(np.vstack(self._trafo), index=time_index(self.times),
                            columns=self.trafo_names)

    def meter_readings(self) -> pd.DataFrame:
        """Every recorded reading in the order sampled: ``dev``, ``ts``, ``seq`` and the quantities.

        The same frame as one small DataFrame per sample concatenated, built a few frames at a time: samples
        with the same columns (and dtypes) are joined with numpy, and their rows put back in sampling order.
        """
        groups = by_columns(self._samples)
        if len(groups) <= 1:
            return _readings_frame(self._samples) if self._samples else pd.DataFrame()
        frames = [_readings_frame(group) for group in groups]
        position = {id(s): k for k, s in enumerate(self._samples)}  # each row's place in the sampling order
        order = np.concatenate([np.repeat([position[id(s)] for s in group], [len(s.devices) for s in group])
                                for group in groups])
        joined = pd.concat(frames, ignore_index=True)
        return joined.take(np.argsort(order, kind="stable")).reset_index(drop=True)

    def write(self, out: Path) -> list[str]:
        """Write every series to ``out``; returns the file names written."""
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "grid_bus_vm_pu.parquet": self.bus_voltages(),
            "grid_line_loading_percent.parquet": self.line_loading(),
            "grid_trafo_loading_percent.parquet": self.trafo_loading(),
            "meter_readings.parquet": self.meter_readings(),
        }
        for name, frame in files.items():
            frame.columns = [str(c) for c in frame.columns]
            frame.to_parquet(out / name)
        return list(files)


def _readings_frame(samples: list[MeterSample]) -> pd.DataFrame:
    """Samples of the same columns and dtypes as one frame (column-wise: one numpy join per column)."""
    first = samples[0]
    cols: dict[str, object] = {
        "dev": np.array([d for s in samples for d in s.devices], dtype=object),
        "ts": np.repeat(np.array([s.ts_ms for s in samples], dtype=np.int64), [len(s.devices) for s in samples]),
        "seq": np.concatenate([np.asarray(s.seq) for s in samples]),
    }
    cols.update({k: np.concatenate([np.asarray(s.quantities[k]) for s in samples]) for k in first.quantities})
    return pd.DataFrame(cols)


class RecordStage:
    """Records the grid every step and, where there are substation meters, the transformer power for the KPIs."""

    def __init__(self, recorder: RunRecorder, kpi: KpiRecorder | None, transformer: int, period_ms: int,
                 offset_ms: int = 0) -> None:
        self.recorder, self.kpi, self.transformer = recorder, kpi, transformer
        self.period_ms, self.offset_ms = period_ms, offset_ms

    def step(self, clock: Clock, inputs: Outputs) -> None:
        grid = inputs.get(GridOutput)
        when = clock.unix_ms
        if self.kpi is not None and grid.state.trafo_p_mw is not None:
            self.kpi.record(when, float(grid.state.trafo_p_mw[self.transformer] * 1e6) / 1000, grid.curtailed_kw(),
                            grid.battery_kw())
        self.recorder.record_step(when, grid.state)
