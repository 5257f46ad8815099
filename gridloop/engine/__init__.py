"""The engine: one SimPy clock that wires profiles, grid, meters, DIA, platform and controller."""
