"""The run summary's links block: a summary written before per-path entries existed still reads, and the entries
are typed (a section that is no meter class's link is refused)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gridloop.contract.summary import LinkSummary

TOTALS = {"technology": "ideal", "gateways": 0, "buffering": True, "lost_in_link": 12,
          "dropped_gateway_overflow": 0, "buffered_at_end": 0, "dia_dropped": 0}
PATH = {"meters": "home_1hz", "section": "meters.link_1hz", "meter_count": 10, "technology": "home_4g",
        "profile": "field", "gateways": 10, "buffering": False, "lost_in_link": 12, "dropped_gateway_overflow": 0,
        "buffered_at_end": 0}


def test_a_summary_without_paths_still_reads() -> None:
    assert LinkSummary.model_validate(TOTALS).paths == []


def test_paths_are_typed_per_meter_class() -> None:
    links = LinkSummary.model_validate({**TOTALS, "paths": [PATH]})
    assert links.paths[0].section == "meters.link_1hz" and links.paths[0].lost_in_link == 12
    with pytest.raises(ValidationError, match="section"):
        LinkSummary.model_validate({**TOTALS, "paths": [{**PATH, "section": "meters.utility"}]})
    with pytest.raises(ValidationError, match="meters"):
        LinkSummary.model_validate({**TOTALS, "paths": [{**PATH, "meters": "smart_plug"}]})
