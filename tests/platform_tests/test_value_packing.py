"""Values packed as scaled integers where exact (SQLite layout 3): every value comes back bit for bit, whatever it
is, and a layout-2 store (float64 rows) is refused, migrated by recording the number, and read the same."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from gridloop.platform.envelope import Reading
from gridloop.platform.store import open_store
from gridloop.platform.store.layout import LAYOUT, StoreLayoutError
from gridloop.platform.store.sqlite.values import FLOAT, Packing, column_code

T0 = 1767225600000
P, V, E = "electricity.power.active.total", "electricity.voltage.l1", "electricity.energy.active.import"


def _bits(x: np.ndarray) -> list[int]:
    return np.asarray(x, np.float64).view(np.int64).tolist()


@pytest.mark.parametrize(("column", "code"), [
    ([230.1, 229.9, 231.0], "i2:1"),  # tenths of a volt
    ([0.0, 1.0, 127.0, -128.0], "i1:0"),
    ([12_345_678.9, 0.1], "i4:1"),  # an energy register in tenths of a Wh
    ([1e12 + 0.5], "i8:1"),
    ([0.123456], "i4:6"),
    ([1 / 3], FLOAT),  # no decimal gives it back
    ([0.1234567], FLOAT),  # more than 6 decimals
    ([-0.0, 1.0], FLOAT),  # an integer has no -0.0
    ([math.nan], FLOAT), ([math.inf], FLOAT), ([1e300], FLOAT),
    ([2.0**53], FLOAT),  # beyond the integers a float64 holds exactly
])
def test_a_column_is_packed_in_the_smallest_exact_form(column, code):
    x = np.array(column, np.float64)
    assert column_code(x) == code
    packing = Packing(("q",), (code,))
    back = packing.unpack(packing.pack(x.reshape(-1, 1)))[:, 0]
    assert _bits(back) == _bits(x)


def test_random_meter_values_come_back_bit_for_bit_in_fewer_bytes():
    rng = np.random.default_rng(13)
    n = 5000
    matrix = np.column_stack([
        np.round(rng.uniform(0, 5e7, n), 1),  # energy register, Wh
        np.round(rng.normal(230, 3, n), 1), np.round(rng.normal(0, 2000, n), 1),  # V, W (either sign)
        np.round(rng.normal(0, 1, n), 3) + 0.0, rng.normal(0, 1, n),  # 3 decimals (no -0.0); float64 noise
        np.zeros(n), np.round(rng.uniform(-1, 1, n), 6)])
    packing = Packing(tuple(f"q{j}" for j in range(matrix.shape[1])),
                      tuple(column_code(matrix[:, j]) for j in range(matrix.shape[1])))
    assert packing.codes == ("i4:1", "i2:1", "i4:1", "i2:3", FLOAT, "i1:0", "i4:6")
    packed = packing.pack(matrix)
    assert len(packed) == n * (4 + 2 + 4 + 2 + 8 + 1 + 4) < n * 8 * matrix.shape[1] / 2
    assert _bits(packing.unpack(packed)) == _bits(matrix)


def test_the_store_gives_back_what_was_sent(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    sent = [{P: 1234.5, V: 230.1, E: 98_765_432.1}, {P: -0.0, V: 1 / 3, E: 0.0}, {P: 1e300, V: -5.25, E: 2.0**60},
            {P: 7.0, V: 230.0}]  # another quantity set in the same batch
    try:
        assert store.insert_readings("a", [Reading("m1", T0 + i * 1000, i, q) for i, q in enumerate(sent)]) == 4
        got = [r.q for r in store.query_readings("a", "m1", None, None, 10)]
        assert got == sent
        assert [math.copysign(1, r[P]) for r in got] == [1, -1, 1, 1]  # -0.0 stays -0.0
        assert store.insert_readings("a", [Reading("m1", T0, 0, sent[0])]) == 0  # redelivered: stored once
    finally:
        store.close()


def test_a_layout2_store_is_refused_migrated_and_read_the_same(tmp_path):
    path = tmp_path / "l2.db"
    uri = f"sqlite:///{path}"
    open_store(uri).close()
    old = {P: 1234.5, V: 230.1}
    with sqlite3.connect(path) as db:  # as layout 2 wrote it: a shape of names only, float64 values
        db.execute("INSERT INTO shapes (id, names) VALUES (7, ?)", (f"{P},{V}",))
        db.execute("INSERT INTO readings VALUES ('a', 'm1', ?, 0, 7, ?)",
                   (T0, np.array([old[P], old[V]], "<f8").tobytes()))
        db.execute("INSERT INTO rollup_marks VALUES ('a', ?)", (T0,))  # not folded yet
        db.execute("UPDATE store_info SET value='2' WHERE key='layout'")
    with pytest.raises(StoreLayoutError, match=f"layout 2, this gridloop reads layout {LAYOUT}"):
        open_store(uri)
    done = subprocess.run([sys.executable, "-m", "gridloop", "platform", "migrate", "--store", uri],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and f"is at layout {LAYOUT}" in done.stdout, done.stderr
    store = open_store(uri)
    try:
        new = {P: 1000.0, V: 229.5}
        assert store.insert_readings("a", [Reading("m1", T0 + 60_000, 1, new)]) == 1
        assert [r.q for r in store.query_readings("a", "m1", None, None, 10)] == [old, new]
        assert store.materialize_rollups("a", T0 + 86_400_000) == 2  # float64 and packed rows folded together
        [bucket] = store.query_rollups("a", ["m1"], P, "1h", T0, T0 + 3_600_000)
        assert (bucket.n, bucket.sum, bucket.first, bucket.last) == (2, 2234.5, 1234.5, 1000.0)
    finally:
        store.close()
