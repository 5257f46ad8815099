"""The batched ingest path: exact rollups with duplicates inside and across batches, on both stores."""

from __future__ import annotations

import random

import numpy as np

from gridloop.platform.envelope import Reading, decode_telemetry
from gridloop.platform.rollups import RESOLUTIONS, rollup_rows
from gridloop.platform.store.base import DeviceRecord
from gridloop.platform.store.registry_cache import Registration

T0 = 1767225600000
Q = "electricity.voltage.l1"


def test_duplicates_in_one_batch_with_and_without_seq(store):
    store.create_tenant("alpha")
    store.put_devices([DeviceRecord(tenant="alpha", id="m1", type="electricity_meter")])
    batch = [Reading("m1", T0, None, {Q: 1.0}), Reading("m1", T0, 7, {Q: 2.0}), Reading("m1", T0 + 1, 8, {Q: 3.0})]
    assert store.insert_readings("alpha", batch) == 2
    [bucket] = store.query_rollups("alpha", ["m1"], Q, "1m", 0, 2**62)
    assert (bucket.n, bucket.sum, bucket.first, bucket.last) == (2, 4.0, 1.0, 3.0)  # the first of a duplicate wins


def test_random_batches_with_redelivery_give_exact_rollups(store):
    store.create_tenant("alpha")
    store.put_devices([DeviceRecord(tenant="alpha", id=f"m{i}", type="electricity_meter") for i in range(3)])
    rng = random.Random(7)
    readings = [Reading(f"m{i}", T0 + k * 7_000 + i, k, {Q: round(rng.uniform(200, 250), 3), "x.y": float(k)})
                for i in range(3) for k in range(120)]
    rng.shuffle(readings)
    stored = 0
    for off in range(0, len(readings), 50):
        batch = readings[off:off + 50] + rng.sample(readings[:off + 50], 10)  # every batch redelivers some
        stored += store.insert_readings("alpha", batch)
    assert stored == len(readings)
    for res, width in RESOLUTIONS.items():
        for dev in ("m0", "m2"):
            mine = sorted((r for r in readings if r.dev == dev), key=lambda r: r.ts)
            ts = np.array([r.ts for r in mine])
            v = np.array([r.q[Q] for r in mine])
            got = {b.start: b for b in store.query_rollups("alpha", [dev], Q, res, 0, 2**62)}
            keys = ts - ts % width
            assert sorted(got) == sorted(set(keys.tolist()))
            for k, b in got.items():
                sel = keys == k
                assert b.n == sel.sum() and abs(b.sum - v[sel].sum()) < 1e-6
                assert b.min == v[sel].min() and b.max == v[sel].max()
                assert b.first == v[sel][0] and b.last == v[sel][-1]


def test_rollup_rows_handles_mixed_quantity_sets():
    rows = rollup_rows("t", [Reading("a", T0, 0, {"p": 1.0, "q": 2.0}), Reading("a", T0 + 1000, 1, {"p": 3.0}),
                             Reading("b", T0, 0, {"q": 5.0, "p": 4.0})])
    minute: dict[tuple[str, str], list[int | float]] = {}
    for r in rows:  # one row per bucket and quantity set: the store's upsert folds rows of the same key
        if r[3] == 60_000:
            n, total = minute.get((r[1], r[2]), [0, 0.0])
            minute[(r[1], r[2])] = [n + r[5], total + r[6]]
    assert minute == {("a", "p"): [2, 4.0], ("a", "q"): [1, 2.0], ("b", "p"): [1, 4.0], ("b", "q"): [1, 5.0]}


def test_clean_and_dirty_envelopes_decode_alike():
    devices = {("alpha", "m1"): Registration(), ("beta", "m2"): Registration()}

    def registered(tenant: str, dev: str) -> Registration | None:
        return devices.get((tenant, dev))

    a = "electricity.power.active.total"
    t = 1_767_225_600_000
    clean = (b'{"v":1,"readings":[{"dev":"m1","ts":1767225600005,"seq":1,"q":{"%s":1.5}},'
             b'{"dev":"m1","ts":1767225600006,"q":{"%s":2.5}}]}' % (a.encode(), a.encode()))
    assert [tuple(r) for r in decode_telemetry(clean, "alpha", "dia-1", registered).readings] == \
        [("m1", t + 5, 1, {a: 1.5}), ("m1", t + 6, None, {a: 2.5})]
    dirty = (b'{"v":1,"readings":[{"dev":"m1","ts":1767225600005,"q":{"A":1}},'
             b'{"dev":"m2","ts":1767225600005,"q":{"A":1.0}},'
             b'{"dev":"m1","ts":1767225600007,"q":{"A":true}},{"dev":"m1","ts":1767225600008,"q":{}}]}'
             ).replace(b"A", a.encode())
    d = decode_telemetry(dirty, "alpha", "dia-1", registered)
    assert [tuple(r) for r in d.readings] == [("m1", t + 5, None, {a: 1.0})]  # an int value is a number
    assert d.rejections == ["readings[2]: Expected `float`, got `bool` - at `$.q[...]`",
                            "readings[3]: Expected `object` of length >= 1 - at `$.q`",
                            "readings[1]: unknown device 'm2'"]  # beta's m2: as unknown as an absent one


def test_mixed_quantity_sets_in_one_bucket_fold_into_one_stored_bucket(store):
    store.create_tenant("alpha")
    store.put_devices([DeviceRecord(tenant="alpha", id="a", type="electricity_meter")])
    assert store.insert_readings("alpha", [Reading("a", T0, 0, {"p": 1.0, "q": 2.0}),
                                           Reading("a", T0 + 1000, 1, {"p": 3.0})]) == 2
    for res in RESOLUTIONS:
        [b] = store.query_rollups("alpha", ["a"], "p", res, 0, 2**62)
        assert (b.n, b.sum, b.min, b.max, b.first, b.last) == (2, 4.0, 1.0, 3.0, 1.0, 3.0)
