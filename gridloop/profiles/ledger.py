"""Streaming integration of power-change events into exact per-step energies, a block of steps at a time.

Energy of a step [t0, t1) = level(t0) * dt + sum over kinks in the step of dP * (t1 - t_kink). All terms
are multiples of 1/16 J, so float64 sums are exact and any step length integrates to the same energy.
Steps are computed in blocks of B steps as dense (B, n) arrays: no per-home or per-kink Python loops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridloop.profiles.behaviour import Kinks

BLOCK_CELLS = 1 << 18  # target size of a dense (steps x homes) block
BLOCK_SECONDS = 6 * 3600
# A block's energies are computed when it opens, inside one step: a long block of a small fleet (2,570 one-second
# steps of 102 homes) made that step take ~20 ms a substation, 2 s for 100 substations, late in real time. So a
# block holds at most 64 steps or 8,192 home-steps, whichever is more: the same work spread evenly (energies are
# exact sums, the same for any block length), while a fleet of a few homes keeps long blocks (few opens a day).
BLOCK_MAX_STEPS = 64
BLOCK_OPEN_CELLS = 1 << 13


@dataclass
class _Block:
    t0: int
    n_steps: int
    step: np.ndarray  # step index of each kink in the block
    rem: np.ndarray  # seconds from each kink to the end of its step
    kinks: Kinks


class _Channel:
    """Levels of P and Q for one grouping of kinks (per home, per home-phase, flexible only)."""

    def __init__(self, width: int, n: int) -> None:
        self.size = width * n
        self.level_p = np.zeros(self.size)
        self.level_q = np.zeros(self.size)
        self.start_p = self.level_p
        self.start_q = self.level_q

    def open(self) -> None:
        self.start_p, self.start_q = self.level_p.copy(), self.level_q.copy()

    def close(self, idx: np.ndarray, k: Kinks) -> None:
        """Move levels to the end of the block."""
        if idx.shape[0]:
            self.level_p += np.bincount(idx, weights=k.dp, minlength=self.size)
            self.level_q += np.bincount(idx, weights=k.dq, minlength=self.size)

    def dense(self, b: _Block, idx: np.ndarray, dt: int) -> tuple[np.ndarray, np.ndarray]:
        """(B, size) step energies (J) of P and Q over the block: level * dt plus in-step kink parts."""
        out = []
        cells = b.n_steps * self.size
        flat = b.step * self.size + idx
        for start, w in ((self.start_p, b.kinks.dp), (self.start_q, b.kinks.dq)):
            s = np.bincount(flat, weights=w, minlength=cells).reshape(b.n_steps, self.size)
            if b.n_steps > 64:  # few homes, many steps: vectorise over steps
                e = np.cumsum(s, axis=0)
                e -= s
                e += start
                e *= dt
            else:  # many homes: row-wise running level is cheaper than a strided cumsum
                e = np.empty_like(s)
                level = start.copy()
                for i in range(b.n_steps):
                    np.multiply(level, dt, out=e[i])
                    level += s[i]
            if flat.shape[0]:
                np.add.at(e.reshape(-1), flat, w * b.rem)
            out.append(e)
        return out[0], out[1]


class KinkLedger:
    """Time-sorted pending kinks, current levels, and lazily computed dense blocks of step energies."""

    def __init__(self, n: int, three_phase: np.ndarray) -> None:
        self.n = n
        # per-phase levels are only needed for three-phase homes (single-phase: all on one phase)
        self.three_phase = three_phase
        self.tp_pos = np.cumsum(three_phase) - 1
        self.total = _Channel(1, n)
        self.phase = _Channel(3, int(three_phase.sum()))
        self.flex = _Channel(1, n)
        self._buf: Kinks | None = None
        self._pos = 0
        self.block: _Block | None = None
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._subsets: dict[str, tuple[np.ndarray, ...]] = {}

    def block_steps(self, dt: int) -> int:
        """Steps per block: bounded in memory, to 6 h so behaviour is not generated far ahead, and so that no
        one step carries much of the work (BLOCK_MAX_STEPS, BLOCK_OPEN_CELLS)."""
        return max(1, min(BLOCK_CELLS // self.n, BLOCK_SECONDS // dt, max(BLOCK_MAX_STEPS, BLOCK_OPEN_CELLS // self.n)))

    def add(self, k: Kinks) -> None:
        """Merge new kinks into the pending, time-sorted buffer."""
        k = k.take(np.argsort(k.time, kind="stable"))
        old = None if self._buf is None else self._buf.take(slice(self._pos, None))
        if old is not None and old.time.shape[0] and k.time.shape[0]:
            # both sorted and they overlap only around midnight: merge just the overlap (old first on ties)
            i0 = int(np.searchsorted(old.time, k.time[0], side="left"))
            j1 = int(np.searchsorted(k.time, old.time[-1], side="right"))
            mid = Kinks.concat([old.take(slice(i0, None)), k.take(slice(0, j1))])
            mid = mid.take(np.argsort(mid.time, kind="stable"))
            k = Kinks.concat([old.take(slice(0, i0)), mid, k.take(slice(j1, None))])
        self._buf = k
        self._pos = 0

    def add_level(self, p: np.ndarray, q: np.ndarray, phase: np.ndarray) -> None:
        """Add a constant load (e.g. standby) to the levels."""
        self.total.level_p += p
        self.total.level_q += q
        tp = self.three_phase
        np.add.at(self.phase.level_p, self.tp_pos[tp] * 3 + phase[tp], p[tp])
        np.add.at(self.phase.level_q, self.tp_pos[tp] * 3 + phase[tp], q[tp])

    def _index(self, name: str, k: Kinks) -> tuple[np.ndarray, Kinks]:
        if name == "total":
            return k.home, k
        f = self.three_phase[k.home] if name == "phase" else k.flex
        sub = k.take(f)
        if name == "phase":
            return self.tp_pos[sub.home] * 3 + sub.phase, sub
        return sub.home, sub

    def open_block(self, t0: int, dt: int, n_steps: int) -> None:
        """Close the current block and take the kinks of [t0, t0 + n_steps * dt) as the next one."""
        self.close_block()
        assert self._buf is not None
        t1 = t0 + n_steps * dt
        times = self._buf.time[self._pos:]
        end = self._pos + int(np.searchsorted(times, np.asarray(t1, dtype=times.dtype), side="left"))
        k = self._buf.take(slice(self._pos, end))
        self._pos = end
        step = (k.time - t0) // dt
        self.block = _Block(t0, n_steps, step, ((step + 1) * dt + t0 - k.time).astype(np.float64), k)
        for ch in (self.total, self.phase, self.flex):
            ch.open()
        self._cache = {}
        self._subsets = {}

    def close_block(self) -> None:
        if self.block is None:
            return
        for name, ch in (("total", self.total), ("phase", self.phase), ("flex", self.flex)):
            idx, k = self._index(name, self.block.kinks)
            ch.close(idx, k)
        self.block = None

    def energies(self, name: str, dt: int) -> tuple[np.ndarray, np.ndarray]:
        """(B, n) step energies of a channel ("phase": (B, 3 x three-phase homes)), once per block."""
        if name not in self._cache:
            assert self.block is not None
            ch = {"total": self.total, "phase": self.phase, "flex": self.flex}[name]
            b = self.block
            idx, k = self._index(name, b.kinks)
            f = b.kinks.flex if name == "flex" else self.three_phase[b.kinks.home]
            sub = b if k is b.kinks else _Block(b.t0, b.n_steps, b.step[f], b.rem[f], k)
            self._cache[name] = ch.dense(sub, idx, dt)
        return self._cache[name]

    def step_seconds(self, homes: np.ndarray, i: int, dt: int) -> tuple[np.ndarray, np.ndarray]:
        """(len(homes), dt) P (W) and Q (var) of some homes in each second of step i of the open block.

        Kinks fall on whole seconds, so a home's power is constant within each second: the level at the step's
        start plus the running sum of the step's kinks up to that second. The mean over the step times dt is the
        step's energy exactly (the same sums as ``energies``). Vectorised over homes and kinks.
        """
        assert self.block is not None
        b, m = self.block, homes.shape[0]
        pos, step, sec, dp, dq = self._subset(homes)
        lo, hi = np.searchsorted(step, [i, i + 1], side="left")
        out = []
        for start, w in ((self.total.start_p, dp), (self.total.start_q, dq)):
            level = start[homes] + np.bincount(pos[:lo], weights=w[:lo], minlength=m)
            d = np.bincount(pos[lo:hi] * dt + (sec[lo:hi] - (b.t0 + i * dt)), weights=w[lo:hi], minlength=m * dt)
            out.append(level[:, None] + np.cumsum(d.reshape(m, dt), axis=1))
        return out[0], out[1]

    def _subset(self, homes: np.ndarray) -> tuple[np.ndarray, ...]:
        """The open block's kinks of some homes (position among them, step, time, dP, dQ), once per block."""
        key = "seconds:" + homes.tobytes().hex()
        if key not in self._subsets:
            assert self.block is not None
            where = np.full(self.n, -1, dtype=np.int64)
            where[homes] = np.arange(homes.shape[0])
            k, b = self.block.kinks, self.block
            f = where[k.home] >= 0
            self._subsets = {key: (where[k.home[f]], b.step[f], k.time[f].astype(np.int64),
                                   k.dp[f].astype(np.float64), k.dq[f].astype(np.float64))}
        return self._subsets[key]

    def skip_to(self, t: int) -> None:
        """Apply all kinks before t to the levels without computing energies (fleet start-up)."""
        assert self._buf is not None
        self.open_block(t - 1, 1, 1)
        self.close_block()
