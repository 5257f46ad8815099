"""Pilot finding as a scenario run: 1 Hz meters over a home gateway's 4G link lose more than the 2,400 samples a
day disaggregation can spare (84,000 of 86,400) without buffering, and keep ≥ 99.9 % with it.

A short version of ``scenarios/pilot-1hz-buffering.yaml`` runs end to end (meters → link → gateway → DIA →
MQTT → platform store), unpaced; the shares are the pilot's per-day figures scaled to the run's length.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gridloop.engine.run import RunOptions, run_scenario
from gridloop.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SPAN_S = 4 * 3600  # long enough that each meter sees dozens of connection drops
HOMES = 3
PILOT_SHARE = 84_000 / 86_400


def _stored_share(tmp_path: Path, buffering: bool) -> tuple[dict[str, float], dict]:
    s = load_scenario(ROOT / "scenarios" / "pilot-1hz-buffering.yaml")
    s.clock.duration = float(SPAN_S)
    s.households.count = s.meters.home_1hz = HOMES
    s.meters.interval = float(SPAN_S)  # the homes' interval meters barely add to the run
    s.meters.link_1hz.buffering = buffering
    s.outputs.progress, s.outputs.plots = False, False
    summary = run_scenario(s, RunOptions(out=tmp_path / ("buffered" if buffering else "plain")))
    per_meter = summary.completeness["per_meter"]
    one_hz = {dev: days[0]["received"] / SPAN_S for dev, days in per_meter.items()
              if days[0]["received"] > SPAN_S / 2}  # the 1 Hz meters (the interval meters hold one or two)
    return one_hz, summary.links.model_dump()


@pytest.mark.slow
def test_1hz_meters_over_4g_need_buffering_for_a_complete_day(tmp_path):
    plain, links = _stored_share(tmp_path, buffering=False)
    assert len(plain) == HOMES
    assert all(share < PILOT_SHARE for share in plain.values()), plain
    assert all(share > 0.9 for share in plain.values()), plain  # drops, not a dead link
    assert links["lost_in_link"] >= (1 - PILOT_SHARE) * HOMES * SPAN_S
    one_hz_path = next(p for p in links["paths"] if p["meters"] == "home_1hz")
    assert (one_hz_path["technology"], one_hz_path["buffering"], one_hz_path["meter_count"]) == (
        "home_4g", False, HOMES)
    assert one_hz_path["lost_in_link"] == links["lost_in_link"]  # the interval meters' link is ideal

    buffered, links = _stored_share(tmp_path, buffering=True)
    assert len(buffered) == HOMES
    assert all(share >= 0.999 for share in buffered.values()), buffered
    assert links["lost_in_link"] == 0
