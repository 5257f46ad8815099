"""One contract for every store: the same tests run unchanged against SQLite and MongoDB (FerretDB)."""

from __future__ import annotations

import inspect

import numpy as np
import orjson
import pytest

from gridloop.platform.envelope import Event, Reading
from gridloop.platform.rollups import RESOLUTIONS
from gridloop.platform.store.base import AssetRecord, CommandRecord, DeviceRecord

T0 = 1767225600000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000


def _meter(tenant: str, dev: str, asset: str | None = None) -> DeviceRecord:
    return DeviceRecord(tenant=tenant, id=dev, type="electricity_meter", phases=3, asset=asset,
                        meta={"interval_s": 10})


def test_tenants_and_keys(store):
    key = store.create_tenant("alpha")
    assert key.startswith("glk_")
    assert store.tenant_of_key(key) == "alpha"
    assert store.tenant_of_key("glk_wrong") is None
    assert store.tenant_exists("alpha") and not store.tenant_exists("beta")
    with pytest.raises(ValueError, match="exists"):
        store.create_tenant("alpha")
    assert store.tenant_of_key(store.create_tenant("beta")) == "beta"


def test_devices_registry_and_owner(store):
    store.put_devices([_meter("alpha", "m2"), _meter("alpha", "m1", asset="house-1")])
    store.put_devices([DeviceRecord(tenant="beta", id="b1", type="switch")])
    assert [d.id for d in store.list_devices("alpha")] == ["m1", "m2"]
    m1 = store.get_device("alpha", "m1")
    assert (m1.type, m1.phases, m1.asset, m1.meta, m1.status) == ("electricity_meter", 3, "house-1",
                                                                  {"interval_s": 10}, "unknown")
    assert store.get_device("beta", "m1") is None
    assert store.is_registered("alpha", "m1") and store.is_registered("beta", "b1")
    assert not store.is_registered("beta", "m1") and not store.is_registered("alpha", "b1")
    assert not store.is_registered("alpha", "zz")
    store.set_device_status("alpha", "m1", "online")
    store.set_device_status("beta", "m2", "offline")  # not beta's: no effect
    m1.phases = 1
    store.put_devices([m1])  # re-provisioning keeps the status
    assert (store.get_device("alpha", "m1").phases, store.get_device("alpha", "m1").status) == (1, "online")
    assert store.get_device("alpha", "m2").status == "unknown"
    # ids are scoped per tenant: beta's own m1 is another device, and neither changes the other
    store.put_devices([DeviceRecord(tenant="beta", id="m1", type="switch")])
    assert store.get_device("beta", "m1").type == "switch" and store.get_device("alpha", "m1").type == \
        "electricity_meter"
    assert [d.id for d in store.list_devices("beta")] == ["b1", "m1"]
    assert [(i, t, orjson.loads(m)) for i, t, m in store.device_metas("alpha")] == [
        ("m1", "electricity_meter", {"interval_s": 10}), ("m2", "electricity_meter", {"interval_s": 10})]
    store.set_device_status("beta", "m1", "offline")
    assert store.get_device("alpha", "m1").status == "online"
    assert store.delete_device("beta", "m1") and not store.delete_device("beta", "m1")
    assert store.get_device("alpha", "m1").type == "electricity_meter"
    assert store.delete_device("alpha", "m1")
    assert store.get_device("alpha", "m1") is None and not store.is_registered("alpha", "m1")


def test_registry_lists_and_events_page_by_cursor(store):
    store.put_devices([_meter("alpha", f"m{i}") for i in (3, 1, 4, 2)] + [_meter("beta", "m0")])
    assert [d.id for d in store.list_devices("alpha", limit=2)] == ["m1", "m2"]
    assert [d.id for d in store.list_devices("alpha", after="m2", limit=5)] == ["m3", "m4"]
    assert store.list_devices("alpha", after="m4") == []
    for i in (2, 0, 1):
        store.put_asset(AssetRecord("alpha", f"h{i}", "house"))
    assert [a.id for a in store.list_assets("alpha", after="h0", limit=1)] == ["h1"]
    store.put_devices([_meter("alpha", "m4", "h1"), _meter("alpha", "m2", "h1"), _meter("beta", "m0", "h1")])
    assert store.devices_of_asset("alpha", "h1") == ["m2", "m4"] and store.devices_of_asset("beta", "h1") == ["m0"]
    assert store.devices_of_asset("alpha", "h2") == []
    store.insert_events("alpha", [Event("m1", T0 + k // 2, "power_outage" if k % 2 else "tamper", "alarm", {})
                                  for k in range(6)])
    assert [(e.ts, e.type) for e in store.query_events("alpha", "m1", None, None, None, 3)] == [
        (T0, "power_outage"), (T0, "tamper"), (T0 + 1, "power_outage")]


def test_assets(store):
    store.put_asset(AssetRecord("alpha", "sub-1", "substation", "Main"))
    store.put_asset(AssetRecord("alpha", "feeder-1", "feeder", "F1", parent="sub-1"))
    store.put_asset(AssetRecord("alpha", "feeder-1", "feeder", "F1b", parent="sub-1"))  # replaces
    assert store.get_asset("alpha", "feeder-1") == AssetRecord("alpha", "feeder-1", "feeder", "F1b", "sub-1")
    assert [a.id for a in store.list_assets("alpha")] == ["feeder-1", "sub-1"]
    assert store.get_asset("beta", "sub-1") is None and store.list_assets("beta") == []


def test_readings_are_idempotent_and_counted_exactly(store):
    store.put_devices([_meter("alpha", "m1"), _meter("alpha", "m2")])
    batch = [Reading(d, T0 + 10_000 * k, k, {"electricity.voltage.l1": 230.0 + k}) for d in ("m1", "m2")
             for k in range(30)]
    assert store.insert_readings("alpha", batch) == 60
    assert store.insert_readings("alpha", batch) == 0
    overlap = batch[25:35] + [Reading("m1", T0 + 10_000 * k, k, {"x": 1.0}) for k in range(30, 33)]
    assert store.insert_readings("alpha", overlap) == 3
    twice = [Reading("m2", T0 - 5, 0, {"x": 2.0}), Reading("m2", T0 - 5, 0, {"x": 3.0})]
    assert store.insert_readings("alpha", twice) == 1  # the same (dev, ts) twice in one batch
    assert store.count_readings("alpha") == 64
    assert store.count_readings("beta") == 0
    got = store.query_readings("alpha", "m1", T0, T0 + 10_000, 10)
    assert [(r.ts, r.seq, r.q) for r in got] == [(T0, 0, {"electricity.voltage.l1": 230.0})]


def test_query_order_limits_and_ranges(store):
    store.put_devices([_meter("alpha", "m1")])
    stamps = [T0 + 3 * HOUR + 5, T0, T0 + HOUR - 1, T0 + HOUR, T0 + 2 * HOUR + 7, T0 + 90_000]
    assert store.insert_readings("alpha", [Reading("m1", ts, i, {"a.b": float(i)}) for i, ts in enumerate(stamps)]) == 6
    all_ = store.query_readings("alpha", "m1", None, None, 100)
    assert [r.ts for r in all_] == sorted(stamps)
    assert all_[0].q == {"a.b": 1.0}
    assert [r.ts for r in store.query_readings("alpha", "m1", None, None, 2)] == [T0, T0 + 90_000]
    assert [r.ts for r in store.query_readings("alpha", "m1", T0 + HOUR - 1, T0 + 2 * HOUR + 7, 100)] == [
        T0 + HOUR - 1, T0 + HOUR]
    assert [r.ts for r in store.query_readings("alpha", "m1", T0 + HOUR, None, 2)] == [T0 + HOUR, T0 + 2 * HOUR + 7]
    assert store.query_readings("alpha", "m1", T0 + 4 * HOUR, None, 100) == []
    assert store.readings_per_device("alpha", T0, T0 + HOUR) == {"m1": 3}
    assert store.readings_per_device("alpha", None, None) == {"m1": 6}
    # spans not on whole hours: counted exactly at both ends
    assert store.readings_per_device("alpha", T0 + 1, T0 + 2 * HOUR + 8) == {"m1": 4}
    assert store.readings_per_device("alpha", T0 + HOUR - 1, T0 + HOUR + 1) == {"m1": 2}
    assert store.readings_per_device("alpha", T0 + 1, T0 + HOUR - 1) == {"m1": 1}
    assert store.readings_per_device("alpha", T0 + 3 * HOUR + 6, None) == {}


def test_events(store):
    store.put_devices([_meter("alpha", "m1")])
    evs = [Event("m1", T0 + 1000, "power_outage", "major", {"phase": "l1"}),
           Event("m1", T0 + 1000, "last_gasp", "critical", {}),
           Event("m1", T0 + 5000, "power_restored", "info", {})]
    assert store.insert_events("alpha", evs) == 3
    assert store.insert_events("alpha", evs[:2]) == 0
    got = store.query_events("alpha", "m1", None, None, None)
    assert [(e.ts, e.type) for e in got][2] == (T0 + 5000, "power_restored")
    assert {e.type for e in got[:2]} == {"power_outage", "last_gasp"}
    assert [e.data for e in store.query_events("alpha", "m1", None, None, "power_outage")] == [{"phase": "l1"}]
    assert [e.type for e in store.query_events("alpha", "m1", T0 + 2000, T0 + 6000, None)] == ["power_restored"]
    assert store.query_events("beta", "m1", None, None, None) == []


def test_rejected_are_counted_per_tenant(store):
    store.add_rejected("alpha", "gridloop/v1/alpha/telemetry/x", "not valid JSON", b"{")
    store.add_rejected("alpha", "gridloop/v1/alpha/telemetry/x", "unknown device 'zz'", b"{}")
    store.add_rejected(None, "bad/topic", "topic does not follow the contract", b"")
    store.add_rejected_many([("alpha", "gridloop/v1/alpha/events/x", "events[0]: bad type", b"{}"),
                             ("beta", "gridloop/v1/beta/events/x", "events[0]: bad type", b"{}")])
    assert (store.count_rejected("alpha"), store.count_rejected(None), store.count_rejected("beta")) == (3, 1, 1)


def test_commands_lifecycle(store):
    cmd = CommandRecord(tenant="alpha", id="c-1", device="sw1", name="storage.setpoint", args={"p_kw": 2.5},
                        ts=T0, expires=T0 + 60_000, updated=T0, history=[["pending", T0]])
    store.put_command(cmd)
    store.put_command(CommandRecord(tenant="alpha", id="c-2", device="sw1", name="switch.open", args={},
                                    ts=T0 + 1, expires=None, updated=T0 + 1, history=[["pending", T0 + 1]]))
    assert store.get_command("alpha", "c-1") == cmd
    assert store.get_command("beta", "c-1") is None
    assert not store.update_command("beta", "c-1", "sent", "", T0 + 2)
    for i, status in enumerate(("sent", "accepted", "executed")):
        assert store.update_command("alpha", "c-1", status, f"step {i}", T0 + 10 + i)
    got = store.get_command("alpha", "c-1")
    assert (got.status, got.detail, got.updated) == ("executed", "step 2", T0 + 12)
    assert got.history == [["pending", T0], ["sent", T0 + 10], ["accepted", T0 + 11], ["executed", T0 + 12]]
    assert [c.id for c in store.open_commands()] == ["c-2"]
    assert not store.update_command("alpha", "nope", "sent", "", 0)


def test_a_late_earlier_step_goes_into_the_history_not_the_status(store):
    """Two replicas each handle one response: 'executed' may be written before 'accepted'."""
    store.put_command(CommandRecord(tenant="alpha", id="c-1", device="sw1", name="switch.open", args={},
                                    ts=T0, expires=None, updated=T0, history=[["pending", T0]]))
    assert store.update_command("alpha", "c-1", "sent", "", T0 + 1)
    assert store.update_command("alpha", "c-1", "executed", "done", T0 + 30)
    assert not store.update_command("alpha", "c-1", "accepted", "late", T0 + 20)  # the status stays
    assert not store.update_command("alpha", "c-1", "accepted", "again", T0 + 21)  # recorded once
    assert not store.update_command("alpha", "c-1", "pending", "", T0 + 22)  # never reported by a device
    got = store.get_command("alpha", "c-1")
    assert (got.status, got.detail, got.updated) == ("executed", "done", T0 + 30)
    assert got.history == [["pending", T0], ["sent", T0 + 1], ["accepted", T0 + 20], ["executed", T0 + 30]]
    store.put_command(CommandRecord(tenant="alpha", id="c-2", device="sw1", name="switch.open", args={},
                                    ts=T0, expires=None, updated=T0, history=[["pending", T0]]))
    assert store.update_command("alpha", "c-2", "expired", "", T0 + 5)
    assert not store.update_command("alpha", "c-2", "accepted", "", T0 + 6)  # expired never follows accepted
    assert [s for s, _ in store.get_command("alpha", "c-2").history] == ["pending", "expired"]


def _expected(ts: np.ndarray, v: np.ndarray, width: int) -> dict[int, tuple]:
    out = {}
    keys = ts - ts % width
    for k in np.unique(keys):
        sel = keys == k
        t, x = ts[sel], v[sel]
        out[int(k)] = (int(sel.sum()), float(x.sum()), float(x.min()), float(x.max()),
                       int(t.min()), float(x[t.argmin()]), int(t.max()), float(x[t.argmax()]))
    return out


def test_rollups_match_numpy_and_ignore_redelivery(store):
    rng = np.random.default_rng(7)
    store.put_devices([_meter("alpha", "m1"), _meter("alpha", "m2")])
    raw: dict[str, list[Reading]] = {}
    for dev in ("m1", "m2"):
        minutes = rng.choice(3 * 24 * 60, size=18, replace=False)
        stamps = sorted({int(T0 + m * 60_000 + s * 1000) for m in minutes for s in rng.choice(60, 4, replace=False)})
        raw[dev] = [Reading(dev, ts, i, {"electricity.power.active.total": float(rng.normal(500, 200)),
                                         "electricity.voltage.l1": float(rng.normal(230, 3))})
                    for i, ts in enumerate(stamps)]
    everything = raw["m1"] + raw["m2"]
    rng.shuffle(everything)
    half = len(everything) // 2
    assert store.insert_readings("alpha", everything[:half]) == half
    assert store.insert_readings("alpha", everything[half - 10:]) == len(everything) - half  # overlap: no recount
    assert store.insert_readings("alpha", everything[:20]) == 0
    for dev in ("m1", "m2"):
        ts = np.array([r.ts for r in raw[dev]], dtype=np.int64)
        for q in ("electricity.power.active.total", "electricity.voltage.l1"):
            v = np.array([r.q[q] for r in raw[dev]])
            for res, width in RESOLUTIONS.items():
                got = {b.start: (b.n, b.sum, b.min, b.max, b.first_ts, b.first, b.last_ts, b.last)
                       for b in store.query_rollups("alpha", [dev], q, res, T0, T0 + 4 * 86_400_000)}
                want = _expected(ts, v, width)
                assert got.keys() == want.keys(), (dev, q, res)
                for k in want:
                    assert got[k] == pytest.approx(want[k], rel=1e-12), (dev, q, res, k)
    both = store.query_rollups("alpha", ["m1", "m2"], "electricity.voltage.l1", "1d", T0, T0 + 86_400_000)
    assert [b.dev for b in both] == ["m1", "m2"]
    assert [b.n for b in both] == [sum(1 for r in raw[d] if r.ts < T0 + 86_400_000) for d in ("m1", "m2")]
    # start inclusive, end exclusive on bucket starts
    hours = store.query_rollups("alpha", ["m1"], "electricity.voltage.l1", "1h", T0 + HOUR, T0 + 30 * HOUR)
    assert all(T0 + HOUR <= b.start < T0 + 30 * HOUR for b in hours)
    assert store.query_rollups("alpha", ["m1"], "no.such.quantity", "1h", T0, T0 + 4 * 86_400_000) == []


def test_tenant_isolation(store):
    store.put_devices([_meter("alpha", "a1")])
    store.insert_readings("alpha", [Reading("a1", T0, 1, {"x": 1.0})])
    store.insert_events("alpha", [Event("a1", T0, "tamper", "major", {})])
    assert store.query_readings("beta", "a1", None, None, 10) == []
    assert store.query_events("beta", "a1", None, None, None) == []
    assert store.query_rollups("beta", ["a1"], "x", "1m", 0, T0 * 2) == []
    assert store.readings_per_device("beta", None, None) == {}
    assert store.count_readings("beta") == 0
    assert store.list_devices("beta") == []
    assert len(store.query_rollups("alpha", ["a1"], "x", "1m", 0, T0 * 2)) == 1


def test_restored_rollups_fold_into_stored_ones_like_ingest(store):
    """restore_rollups (a restore of past data) folds rows exactly as ingest folds its own; count_rollups counts."""
    store.insert_readings("alpha", [Reading("m1", T0 + 1000, None, {"x": 2.0, "y": 1.0})])
    store.materialize_rollups("alpha", T0 + 60_000)  # folded now (the SQLite store defers it; MongoDB has)
    assert store.count_rollups("alpha") == 2 * len(RESOLUTIONS)
    width = RESOLUTIONS["1h"]
    rows = [("alpha", "m1", "x", width, T0, 3, 9.0, 1.0, 5.0, T0 + 500, 4.0, T0 + 9000, 1.0),
            ("alpha", "m1", "x", width, T0 + HOUR, 1, 7.0, 7.0, 7.0, T0 + HOUR, 7.0, T0 + HOUR, 7.0),
            ("alpha", "m1", "x", width, T0 + HOUR, 1, 3.0, 3.0, 3.0, T0 + HOUR + 5, 3.0, T0 + HOUR + 5, 3.0),
            ("beta", "b1", "x", width, T0, 1, 1.0, 1.0, 1.0, T0, 1.0, T0, 1.0)]
    assert store.restore_rollups(iter(rows)) == 4
    got = [(b.start, b.n, b.sum, b.min, b.max, b.first_ts, b.first, b.last_ts, b.last)
           for b in store.query_rollups("alpha", ["m1"], "x", "1h", T0, T0 + 2 * HOUR)]
    assert got == [(T0, 4, 11.0, 1.0, 5.0, T0 + 500, 4.0, T0 + 9000, 1.0),
                   (T0 + HOUR, 2, 10.0, 3.0, 7.0, T0 + HOUR, 7.0, T0 + HOUR + 5, 3.0)]
    assert store.count_rollups("alpha") == 2 * len(RESOLUTIONS) + 1 and store.count_rollups("beta") == 1
    assert store.restore_rollups([]) == 0


def test_commands_come_back_with_plain_ints(store):
    """Epoch ms of a command come back as int itself (not bson's Int64): the wire encoder takes no int subclass."""
    store.put_command(CommandRecord(tenant="alpha", id="c-1", device="sw1", name="switch.open", args={}, ts=T0,
                                    expires=T0 + 60_000, updated=T0, history=[["pending", T0]]))
    assert store.update_command("alpha", "c-1", "sent", "", T0 + 5)
    for c in (store.get_command("alpha", "c-1"), *store.open_commands()):
        assert {type(v) for v in (c.ts, c.expires, c.updated, *(t for _, t in c.history))} == {int}


def test_each_store_has_every_method_of_the_store_protocols(store):
    """Store is the union of the per-concern protocols; each backend implements all of them, same parameters."""
    from gridloop.platform.store import base

    concerns = (base.TenantStore, base.RegistryStore, base.ReadingStore, base.RollupStore, base.CommandStore,
                base.LeaseStore)
    names = {n for p in concerns for n in vars(p) if not n.startswith("_") and callable(getattr(p, n))}
    assert names | {"close"} == {n for n in dir(base.Store) if not n.startswith("_")}
    for name in names | {"close"}:
        want = list(inspect.signature(getattr(base.Store, name)).parameters)
        assert list(inspect.signature(getattr(type(store), name)).parameters) == want, name


def test_readings_are_never_cut_short_silently(store, monkeypatch):
    """A quantity far behind readings without it is reached by following next_start (here with a page of 100 rows
    and a scan budget of 1,000 rows per request); a limit says where to go on."""
    from fastapi.testclient import TestClient

    from gridloop.platform.api import create_app, readings

    monkeypatch.setattr(readings, "PAGE", 100)
    monkeypatch.setattr(readings, "SCAN_BUDGET", 1000)
    key = store.create_tenant("paging")
    store.put_devices([DeviceRecord(tenant="paging", id="m1", type="electricity_meter")])
    v, p = "electricity.voltage.l1", "electricity.power.active.total"
    store.insert_readings("paging", [Reading("m1", T0 + 1000 * k, k, {v: 230.0}) for k in range(3000)])
    store.insert_readings("paging", [Reading("m1", T0 + 1000 * (3000 + k), k, {p: float(k)}) for k in range(10)])
    api = TestClient(create_app(store, None), headers={"Authorization": f"Bearer {key}"})
    got, start, calls = [], None, 0
    while True:
        body = api.get("/api/v1/devices/m1/readings", params={"quantity": p, "limit": 100_000,
                                                               **({"start": start} if start else {})}).json()
        got += body["readings"]
        calls += 1
        if body.get("next_start") is None:
            break
        start = body["next_start"]
    assert [r["q"][p] for r in got] == [float(k) for k in range(10)] and calls == 4  # 3 budgets, then the rest
    first = api.get("/api/v1/devices/m1/readings", params={"limit": 3}).json()
    assert [r["ts"] - T0 for r in first["readings"]] == [0, 1000, 2000] and first["next_start"] == T0 + 2001
    rest = api.get("/api/v1/devices/m1/readings", params={"start": T0 + 1000 * 3005}).json()
    assert len(rest["readings"]) == 5 and rest.get("next_start") is None
