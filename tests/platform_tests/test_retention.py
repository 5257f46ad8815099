"""Retention per tenant and resolution on both stores: old data goes in bounded batches, nothing else."""

from __future__ import annotations

import pytest

from gridloop.platform.envelope import Reading
from gridloop.platform.retention import RetentionPolicy, RetentionTask, main, parse_rollup_days
from gridloop.platform.store.base import DeviceRecord

T0 = 1767225600000  # 2026-01-01T00:00Z
H, DAY = 3_600_000, 86_400_000
NOW = T0 + 10 * DAY
Q = "electricity.voltage.l1"


def _fill(store) -> None:
    for tenant in ("alpha", "beta"):
        store.create_tenant(tenant)
        store.put_devices([DeviceRecord(tenant=tenant, id=f"{tenant[0]}1", type="electricity_meter")])
        # one reading every 6 h for 10 days: 40 readings, one bucket of each resolution per reading (10 days)
        assert store.insert_readings(tenant, [Reading(f"{tenant[0]}1", T0 + k * 6 * H, k, {Q: float(k)})
                                              for k in range(40)]) == 40


def _counts(store, tenant: str) -> dict[str, int]:
    dev = f"{tenant[0]}1"
    out = {"raw": len(store.query_readings(tenant, dev, None, None, 10_000))}
    for res in ("1m", "15m", "1h", "1d"):
        out[res] = len(store.query_rollups(tenant, [dev], Q, res, 0, 2**62))
    return out


def test_retention_deletes_only_what_is_older_than_the_bounds(store):
    _fill(store)
    assert _counts(store, "alpha") == {"raw": 40, "1m": 40, "15m": 40, "1h": 40, "1d": 10}
    deleted = store.apply_retention("alpha", raw_days=3, rollup_days={"1m": 2, "1h": 5}, batch=7, now=NOW)
    # raw: ts < NOW - 3 d -> k < 28; 1m: bucket ended by NOW - 2 d -> k < 32; 1h: ended by NOW - 5 d -> k < 20
    assert deleted == {"raw": 28, "1m": 32, "1h": 20}
    assert _counts(store, "alpha") == {"raw": 12, "1m": 8, "15m": 40, "1h": 20, "1d": 10}
    assert store.count_readings("alpha") == 12 and store.readings_per_device("alpha", None, None) == {"a1": 12}
    assert store.readings_per_device("alpha", T0, NOW - 3 * DAY + 1) == {"a1": 1}
    assert store.query_readings("alpha", "a1", None, None, 1)[0].ts == NOW - 3 * DAY
    assert _counts(store, "beta") == {"raw": 40, "1m": 40, "15m": 40, "1h": 40, "1d": 10}  # other tenant untouched
    again = store.apply_retention("alpha", raw_days=3, rollup_days={"1m": 2, "1h": 5}, batch=7, now=NOW)
    assert again == {"raw": 0, "1m": 0, "1h": 0}
    # a reading that arrives late for a deleted span is stored again (retention is not a tombstone)
    assert store.insert_readings("alpha", [Reading("a1", T0 + 6 * H, 1, {Q: 1.0})]) == 1
    assert store.count_readings("alpha") == 13 and store.count_readings("beta") == 40


def test_retention_policy_task_and_cli(tmp_path):
    from gridloop.platform.store.sqlite import SqliteStore

    path = tmp_path / "store.db"
    store = SqliteStore(str(path))
    _fill(store)
    with pytest.raises(ValueError):
        RetentionPolicy("alpha", rollup_days={"2m": 1.0})
    task = RetentionTask(store, [RetentionPolicy("alpha", raw_days=1000)], period_s=0.05)  # keeps everything
    task.start()
    try:
        import time

        deadline = time.monotonic() + 5
        while task.runs < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert task.runs >= 2 and task.deleted == {"raw": 0}
    finally:
        task.stop()
    store.close()
    # the CLI against the real clock: 2026-01 data is older than 1 day in any run after 2026-01-12
    assert parse_rollup_days(["1m=1", "1d=0.5"]) == {"1m": 1.0, "1d": 0.5}
    assert main(["--store", f"sqlite:///{path}", "--tenant", "beta", "--raw-days", "1", "--rollup-days", "1m=1",
                 "--batch", "3"]) == 0
    store = SqliteStore(str(path))
    assert _counts(store, "beta")["raw"] == 0 and _counts(store, "beta")["1m"] == 0
    assert _counts(store, "alpha")["raw"] == 40
    store.close()
