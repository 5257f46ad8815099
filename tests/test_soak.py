"""The soak's CI version: 3 minutes of a real-time scenario with a fault every 12 s (broker killed, store locked,
platform frozen, hostile payloads); every reading the meters sampled is stored, exactly once."""

from __future__ import annotations

import pytest

from gridloop.study.soak import run_soak


@pytest.mark.slow
def test_three_minutes_of_faults_lose_nothing(tmp_path, mosquitto_binary):
    result = run_soak(minutes=3.0, workdir=tmp_path, period_s=12.0)
    print(result.line())
    assert all(n >= 2 for n in result.faults.values()), result.faults  # every kind of fault, more than once
    assert result.sampled == (60 + 1) * 90  # homes and the substation meter, a reading a simulated minute
    assert result.lost == 0 and result.duplicates == 0, result.line()
    assert result.rejected > 0  # the hostile payloads were seen, and refused
