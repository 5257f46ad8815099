"""The DIA's outbox: numbered envelopes kept until the platform acknowledges them, across a restart, bounded."""

from __future__ import annotations

import time

import pytest

from gridloop.contract.delivery import envelope_id
from gridloop.virtual_meters.outbox import Outbox

ENVELOPE = b'{"v":1,"readings":[]}'


def test_ids_are_new_after_a_restart_and_what_was_unacknowledged_is_due_at_once(tmp_path):
    box = Outbox(tmp_path / "outbox.db")
    sent = [box.add("t", ENVELOPE, 2) for _ in range(3)]
    assert [n for n, _ in sent] == [0, 1, 2] and [envelope_id(p) for _, p in sent] == [0, 1, 2]
    assert box.acknowledge([1, 99]) == 2  # an unknown id counts nothing
    assert box.due(older_than_s=60) == []  # just sent
    box.close()
    again = Outbox(tmp_path / "outbox.db")  # the DIA restarted
    assert [p.id for p in again.due(older_than_s=60)] == [0, 2]
    assert again.add("t", ENVELOPE, 1)[0] == 3  # never a number the platform may still acknowledge
    assert again.readings() == 5 and len(again) == 3
    again.close()


def test_unacknowledged_envelopes_come_due_again_after_the_timeout():
    box = Outbox()
    number, _ = box.add("t", ENVELOPE, 1)
    assert number > 10**15  # in memory, ids start from the clock: an old run's late ack names none of them
    assert box.due(older_than_s=0.05) == []
    time.sleep(0.06)
    assert [p.id for p in box.due(older_than_s=0.05)] == [number]
    assert box.due(older_than_s=0.05) == []  # counted as sent again


def test_the_oldest_are_dropped_and_counted_past_the_bound():
    box = Outbox(max_envelopes=2)
    ids = [box.add("t", ENVELOPE, 10)[0] for _ in range(5)]
    assert len(box) == 2 and box.dropped_envelopes == 3 and box.dropped_readings == 30
    assert box.acknowledge(ids[3:]) == 20


def test_a_failed_add_leaves_the_outbox_usable():
    box = Outbox()
    with pytest.raises(ValueError):
        box.add("t", b"not an envelope", 1)
    assert len(box) == 0 and box.add("t", ENVELOPE, 1)[0] >= 0


def test_a_steps_envelopes_are_kept_together_and_survive_a_restart(tmp_path):
    box = Outbox(tmp_path / "outbox.db")
    sent = box.add_many("t", [(ENVELOPE, 50), (ENVELOPE, 1)])
    assert [n for n, _ in sent] == [0, 1] and [envelope_id(p) for _, p in sent] == [0, 1]
    assert box.add_many("t", []) == [] and box.readings() == 51
    with pytest.raises(ValueError):  # one bad envelope: none of the call's is kept, no number is used
        box.add_many("t", [(ENVELOPE, 3), (b"not an envelope", 1)])
    assert len(box) == 2 and box.add("t", ENVELOPE, 2)[0] == 2
    box.close()
    again = Outbox(tmp_path / "outbox.db")
    assert [p.id for p in again.due(older_than_s=60)] == [0, 1, 2] and again.readings() == 53
    assert again.acknowledge([0, 2, 2]) == 52 and again.readings() == 1 and len(again) == 1
    again.close()


def test_the_bound_in_readings_drops_the_oldest_small_envelopes():
    box = Outbox(max_envelopes=1000, max_readings=100)
    ids = [n for n, _ in box.add_many("t", [(ENVELOPE, 40)] * 4)]  # 160 readings: the two oldest go
    assert len(box) == 2 and box.readings() == 80 and box.dropped_envelopes == 2 and box.dropped_readings == 80
    assert box.acknowledge(ids) == 80
