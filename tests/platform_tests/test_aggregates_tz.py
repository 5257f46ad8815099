"""Days and months in a time zone: local midnights, 23 h and 25 h days when daylight saving time changes, read
through the REST API (both stores) and the SDK (a running platform); an unknown zone is refused with a reason."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from gridloop.platform.api import create_app
from gridloop.platform.envelope import Reading
from gridloop.platform.store.base import AssetRecord, DeviceRecord
from gridloop.sdk import PlatformClient, PlatformError

Q = "electricity.power.active.total"
HOUR = 3_600_000
ROME, STOCKHOLM = ZoneInfo("Europe/Rome"), ZoneInfo("Europe/Stockholm")


def _ms(local: str, tz: ZoneInfo) -> int:
    return int(datetime.fromisoformat(local).replace(tzinfo=tz).timestamp() * 1000)


def _hourly(store, dev: str, first: int, hours: int) -> None:
    """One reading in the middle of every UTC hour, its value the hour's index (sums are checkable)."""
    store.insert_readings("alpha", [Reading(dev, first + k * HOUR + HOUR // 2, k, {Q: float(k)})
                                    for k in range(hours)])


def _buckets(body: dict) -> list[tuple[str, float, int, float]]:
    return [(b["start_iso"], (b["end"] - b["start"]) / HOUR, b["count"], b["value"]) for b in body["buckets"]]


def _api(store) -> TestClient:
    api = TestClient(create_app(store, None))
    api.headers["Authorization"] = f"Bearer {store.create_tenant('alpha')}"
    return api


def test_local_days_across_dst_changes_on_both_stores(store):
    store.put_asset(AssetRecord("alpha", "house-1", "house"))
    store.put_devices([DeviceRecord(tenant="alpha", id=d, type="electricity_meter", asset="house-1")
                       for d in ("m1", "m2")])
    spring = _ms("2026-03-28T00:00", ROME)
    _hourly(store, "m1", spring, 72)
    store.materialize_rollups("alpha", spring + 30 * HOUR)  # part folded, the rest read past the mark
    autumn = _ms("2026-10-24T00:00", STOCKHOLM)
    _hourly(store, "m2", autumn, 72)
    api = _api(store)
    day = {"quantity": Q, "interval": "1d", "agg": "count"}
    r = api.get("/api/v1/devices/m1/aggregates", params={
        **day, "tz": "Europe/Rome", "start": "2026-03-28T12:00:00Z", "end": "2026-03-30T12:00:00Z"})
    assert r.status_code == 200, r.text
    assert _buckets(r.json()) == [("2026-03-28T00:00:00+01:00", 24, 24, 24),
                                  ("2026-03-29T00:00:00+01:00", 23, 23, 23),
                                  ("2026-03-30T00:00:00+02:00", 24, 24, 24)]
    assert r.json()["tz"] == "Europe/Rome" and r.json()["start"] == spring
    r = api.get("/api/v1/assets/house-1/aggregates", params={**day, "agg": "sum", "tz": "Europe/Stockholm",
                                                             "start": autumn, "end": autumn + 72 * HOUR})
    assert _buckets(r.json()) == [("2026-10-24T00:00:00+02:00", 24, 24, sum(range(24))),
                                  ("2026-10-25T00:00:00+02:00", 25, 25, sum(range(24, 49))),
                                  ("2026-10-26T00:00:00+01:00", 24, 23, sum(range(49, 72)))]


def test_local_months_and_utc_days(tmp_path):
    from gridloop.platform.store.sqlite import SqliteStore

    store = SqliteStore(str(tmp_path / "s.db"))
    store.put_devices([DeviceRecord(tenant="alpha", id="m1", type="electricity_meter")])
    spring = _ms("2026-03-01T00:00", ROME)  # March and April 2026 in Rome, every hour (743 + 720 hours)
    _hourly(store, "m1", spring, 1463)
    store.materialize_rollups("alpha", spring + 700 * HOUR)
    api = _api(store)
    day = {"quantity": Q, "interval": "1d", "agg": "count"}
    months = api.get("/api/v1/devices/m1/aggregates", params={**day, "interval": "1mo", "tz": "Europe/Rome",
                                                              "start": spring, "end": spring + 1463 * HOUR}).json()
    assert _buckets(months) == [("2026-03-01T00:00:00+01:00", 743, 743, 743),
                                ("2026-04-01T00:00:00+02:00", 720, 720, 720)]
    utc = api.get("/api/v1/devices/m1/aggregates", params={**day, "start": spring, "end": spring + 48 * HOUR}).json()
    assert [b["start_iso"] for b in utc["buckets"]] == ["2026-02-28T00:00:00Z", "2026-03-01T00:00:00Z",
                                                        "2026-03-02T00:00:00Z"]
    assert [b["count"] for b in utc["buckets"]] == [1, 24, 24]  # UTC days: Rome's first hour fell on Feb 28
    store.close()


@pytest.mark.parametrize("tz", ["Mars/Olympus", "Europe", "../../etc/passwd", "/usr/share/zoneinfo/UTC", ""])
def test_an_unknown_time_zone_is_refused_with_a_reason(tmp_path, tz):
    from gridloop.platform.store.sqlite import SqliteStore

    store = SqliteStore(str(tmp_path / "s.db"))
    store.put_devices([DeviceRecord(tenant="alpha", id="m1", type="electricity_meter")])
    api = TestClient(create_app(store, None))
    api.headers["Authorization"] = f"Bearer {store.create_tenant('alpha')}"
    r = api.get("/api/v1/devices/m1/aggregates", params={"quantity": Q, "interval": "1d", "tz": tz, "start": 0,
                                                          "end": HOUR})
    assert r.status_code == 422 and "unknown time zone" in r.text and "IANA" in r.text
    r = api.get("/api/v1/devices/m1/aggregates", params={"quantity": Q, "interval": "15m", "tz": "Europe/Rome",
                                                          "start": 0, "end": HOUR})
    assert r.status_code == 422 and "tz applies to the intervals 1d, 1mo" in r.text
    store.close()


def test_sdk_reads_local_days(platform):
    admin = PlatformClient(platform.url)
    key = admin.create_tenant("alpha", platform.admin_key)
    admin.close()
    platform.store.put_devices([DeviceRecord(tenant="alpha", id="m1", type="electricity_meter")])
    spring = _ms("2026-03-29T00:00", ROME)
    _hourly(platform.store, "m1", spring - 24 * HOUR, 72)
    with PlatformClient(platform.url, key) as api:
        got = api.aggregates(Q, spring, spring + HOUR, device="m1", interval="1d", agg="count", tz="Europe/Rome")
        assert [(b.start, b.end, b.count) for b in got.buckets] == [(spring, spring + 23 * HOUR, 23)]
        with pytest.raises(PlatformError, match=r"422.*unknown time zone"):
            api.aggregates(Q, spring, spring + HOUR, device="m1", interval="1d", tz="Europe/Atlantis")
