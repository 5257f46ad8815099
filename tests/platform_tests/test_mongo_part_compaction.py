"""MongoDB rollup parts compacted (issue #15), on FerretDB: a closed hour's parts merge into one without changing
any aggregate, and a merge interrupted between any two of its steps, or racing another, changes none either."""

from __future__ import annotations

import pymongo
import pytest

from gridloop.platform.envelope import Reading
from gridloop.platform.rollups import RESOLUTIONS
from gridloop.platform.store.mongo import MongoStore
from gridloop.platform.store.mongo import part_compaction as compaction
from gridloop.platform.store.mongo.rollup_parts import column_part_docs, merged_columns
from tests.platform_tests.conftest import unique_mongo_uri

T0 = 1767225600000  # 2026-01-01T00:00Z
HOURS = 3
DEVS = ("a", "b", "c")
QS = ("electricity.voltage.l1", "electricity.power.active.total")
END = T0 + HOURS * 3_600_000
LATER = END + 86_400_000  # every hour closed


@pytest.fixture
def folded(mongo_uri):
    """Three meters, two quantities, a reading every 30 s for 3 h, folded every 10 minutes: 18 parts per resolution."""
    uri, name = unique_mongo_uri(mongo_uri)
    store = MongoStore(uri)
    for lo in range(T0, END, 600_000):
        store.insert_readings("t", [Reading(d, ts, (ts - T0) // 30_000, {QS[0]: 230.0 + (ts // 30_000) % 7 + i,
                                                                          QS[1]: float((ts // 30_000) % 11 * 100)})
                                    for ts in range(lo, lo + 600_000, 30_000) for i, d in enumerate(DEVS)])
        store._fold("t", {"t1": {"$lt": lo + 600_000}}, float("inf"))  # fold only: the parts pile up
    yield store
    store.close()
    with pymongo.MongoClient(uri) as client:
        client.drop_database(name)


def _aggregates(store: MongoStore) -> dict:
    return {(res, q): [(b.dev, b.start, b.n, b.sum, b.min, b.max, b.first_ts, b.first, b.last_ts, b.last)
                       for b in store.query_rollups("t", list(DEVS), q, res, T0 - 86_400_000, LATER)]
            for res in RESOLUTIONS for q in QS}


def _parts(store: MongoStore, res: str) -> list[dict]:
    return list(store.db.rollup_parts.find({"tenant": "t", "res": res}, {"b": 0, "n": 0, "sum": 0}))


def test_closed_hours_merge_into_one_part_each_and_aggregates_do_not_change(folded):
    before = _aggregates(folded)
    assert all(len(_parts(folded, res)) == 18 for res in RESOLUTIONS)
    assert folded.count_rollups("t") == (count := folded.count_rollups("t"))
    merged = folded.compact_rollup_parts("t", LATER)
    assert merged > 0
    assert _aggregates(folded) == before and folded.count_rollups("t") == count
    for res in ("1m", "15m", "1h"):  # one part per hour
        assert sorted(p["b0"] // 3_600_000 for p in _parts(folded, res)) == [T0 // 3_600_000 + h for h in range(HOURS)]
    assert len(_parts(folded, "1d")) == 1
    assert folded.compact_rollup_parts("t", LATER) == 0  # nothing left to merge


def test_an_open_hour_is_not_merged(folded):
    folded.compact_rollup_parts("t", END)  # the last hour ended less than GRACE_MS ago
    hours = [p["b0"] // 3_600_000 for p in _parts(folded, "1m")]
    assert hours.count(T0 // 3_600_000 + HOURS - 1) == 6 and hours.count(T0 // 3_600_000) == 1


def _merge_by_hand(store: MongoStore, res: str, steps: int) -> list[str]:
    """The first ``steps`` steps of a merge of the first hour's parts (as a process dying after them leaves it)."""
    sources = sorted(p["_id"] for p in _parts(store, res) if p["b0"] < T0 + 3_600_000)
    merge_id = "t|m|by-hand"
    devs, qs, cols = merged_columns(list(store.db.rollup_parts.find({"_id": {"$in": sources}})))
    outputs = [{**d, "merge": merge_id, "mt": 0} for d in column_part_docs("t", merge_id, res, devs, qs, cols)]
    store.db.rollup_parts.insert_many(outputs)
    if steps >= 2:
        store.db.rollup_parts.update_many({"_id": {"$in": sources}}, {"$set": {"m": merge_id, "mt": 0}})
    if steps >= 3:
        store.db.part_merges.insert_one({"_id": merge_id, "tenant": "t", "res": res, "at": 0})
    return sources


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_a_merge_that_died_after_any_step_changes_no_aggregate(folded, steps, monkeypatch):
    before = _aggregates(folded)
    sources = _merge_by_hand(folded, "1m", steps)
    assert _aggregates(folded) == before  # sources or outputs, never both, never neither
    monkeypatch.setattr(compaction, "STALE_MS", 10**12)  # a merge still running (young): left alone
    folded.compact_rollup_parts("t", LATER)
    assert _aggregates(folded) == before
    monkeypatch.setattr(compaction, "STALE_MS", 0)  # it died: its marks lifted, its outputs removed (or finished)
    folded.compact_rollup_parts("t", LATER)
    assert _aggregates(folded) == before
    ids = {p["_id"] for p in _parts(folded, "1m")}
    assert not ids & set(sources) and all("m" not in p for p in _parts(folded, "1m"))
    assert len(ids) == HOURS


def test_a_merge_whose_parts_another_merge_marked_gives_up(folded):
    before = _aggregates(folded)
    first_hour = sorted(p["_id"] for p in _parts(folded, "15m") if p["b0"] < T0 + 3_600_000)
    folded.db.rollup_parts.update_one({"_id": first_hour[-1]}, {"$set": {"m": "t|m|other", "mt": 2**62}})
    assert folded._merge("t", "15m", first_hour) == 0
    assert {p["_id"] for p in _parts(folded, "15m") if p["b0"] < T0 + 3_600_000} == set(first_hour)
    assert [p.get("m") for p in _parts(folded, "15m") if p.get("m")] == ["t|m|other"]  # only the other's mark
    assert _aggregates(folded) == before


def test_the_fold_merges_closed_hours_when_compaction_is_on(folded):
    before = _aggregates(folded)
    folded.compact_parts = True  # on by default on MongoDB, off on FerretDB (docs/store.md)
    folded.materialize_rollups("t", LATER)
    assert len(_parts(folded, "1m")) < 18 and _aggregates(folded) == before
