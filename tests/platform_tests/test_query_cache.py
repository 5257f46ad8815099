"""The aggregate cache (D6.3 §5.2.5) on the real API and a real SQLite store: fresh answers cached, never stale."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from gridloop.platform.api import create_app
from gridloop.platform.envelope import Reading
from gridloop.platform.store.base import DeviceRecord
from gridloop.platform.store.sqlite import SqliteStore

T0 = 1767225600000
Q = "electricity.voltage.l1"


def _setup(tmp_path, bound: float) -> tuple[SqliteStore, TestClient]:
    store = SqliteStore(str(tmp_path / "store.db"))
    key = store.create_tenant("alpha")
    store.put_devices([DeviceRecord(tenant="alpha", id="m1", type="electricity_meter")])
    client = TestClient(create_app(store, None, cache_max_age_s=bound), headers={"Authorization": f"Bearer {key}"})
    return store, client


def _count(client: TestClient) -> tuple[int, int]:
    r = client.get("/api/v1/devices/m1/aggregates",
                   params={"quantity": Q, "start": T0, "end": T0 + 86_400_000, "interval": "1d", "agg": "count"})
    assert r.status_code == 200, r.text
    body = r.json()
    return (body["buckets"][0]["count"] if body["buckets"] else 0), body["as_of"]


def test_a_fresh_cached_answer_is_served_then_refreshed_after_the_bound(tmp_path):
    store, client = _setup(tmp_path, bound=1.0)
    with client:
        store.insert_readings("alpha", [Reading("m1", T0, 0, {Q: 230.0})])
        first, as_of = _count(client)
        assert first == 1
        store.insert_readings("alpha", [Reading("m1", T0 + 10_000, 1, {Q: 231.0})])
        assert _count(client) == (1, as_of)  # served from the cache while fresh
        time.sleep(1.1)
        assert _count(client)[0] == 2  # the bound has passed: the new reading is in
        assert client.app.state.query_cache.counters.hits >= 1
    store.close()


def test_an_answer_is_never_older_than_the_bound(tmp_path):
    bound = 0.4
    store, client = _setup(tmp_path, bound=bound)
    inserted: list[tuple[float, int]] = []  # (monotonic time the commit had returned, readings stored by then)
    behind = 0
    with client:
        deadline = time.monotonic() + 3.0
        i = 0
        while time.monotonic() < deadline:
            store.insert_readings("alpha", [Reading("m1", T0 + i * 1000, i, {Q: 230.0})])
            i += 1
            inserted.append((time.monotonic(), i))
            asked, asked_wall_ms = time.monotonic(), time.time() * 1000
            count, as_of = _count(client)
            must_have = max((n for t, n in inserted if t < asked - bound), default=0)
            assert must_have <= count <= i, (must_have, count, i)
            assert as_of >= asked_wall_ms - bound * 1000 - 20
            behind += count < i
            time.sleep(0.01)
        cache = client.app.state.query_cache
        assert behind > 0 and cache.counters.hits > 0  # answers did come from the cache
        assert cache.counters.refreshes > 0  # and the background refresher kept the hot entry fresh
    store.close()


def test_bound_zero_disables_the_cache(tmp_path):
    store, client = _setup(tmp_path, bound=0.0)
    with client:
        store.insert_readings("alpha", [Reading("m1", T0, 0, {Q: 230.0})])
        assert _count(client)[0] == 1
        store.insert_readings("alpha", [Reading("m1", T0 + 10_000, 1, {Q: 231.0})])
        assert _count(client)[0] == 2
        assert client.app.state.query_cache.counters.hits == 0
    store.close()
