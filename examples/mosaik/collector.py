"""A mosaik collector (the tutorial's Monitor): keeps every value it is sent and writes them as CSV at the end."""

from __future__ import annotations

import csv

import mosaik_api_v3

META = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {"Monitor": {"public": True, "any_inputs": True, "params": [], "attrs": []}},
}


class Collector(mosaik_api_v3.Simulator):
    """One row per step, one column per connected source entity and attribute."""

    def __init__(self) -> None:
        super().__init__(META)
        self.rows: dict[int, dict[str, float]] = {}

    def init(self, sid: str, time_resolution: float = 1.0, out: str = "collected.csv", step_size: int = 60) -> dict:
        self.out, self.step_size = out, step_size
        return self.meta

    def create(self, num: int, model: str) -> list[dict]:
        return [{"eid": f"Monitor-{i}", "type": model} for i in range(num)]

    def step(self, time: int, inputs: dict, max_advance: int) -> int:
        row = self.rows.setdefault(time, {})
        for attrs in inputs.values():
            for attr, sources in attrs.items():
                for source, value in sources.items():  # numpy scalars as plain numbers
                    row[f"{source}.{attr}"] = value.item() if hasattr(value, "item") else value
        return time + self.step_size

    def get_data(self, outputs: dict) -> dict:
        return {}

    def finalize(self) -> None:
        columns = sorted({c for row in self.rows.values() for c in row})
        with open(self.out, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["time", *columns])
            for time, row in sorted(self.rows.items()):
                writer.writerow([time, *(repr(row.get(c)) for c in columns)])
