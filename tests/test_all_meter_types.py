"""Every meter type of the pilots runs through the platform in one scenario, each with its own quantities."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gridloop.engine.run import RunOptions, run_scenario
from gridloop.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_turin_with_every_meter_type(platform, broker_uri, tmp_path):
    admin = {"Authorization": f"Bearer {platform.admin_key}"}
    key = httpx.post(f"{platform.url}/api/v1/tenants", json={"name": "turin"}, headers=admin).json()["api_key"]
    api = httpx.Client(base_url=platform.url, headers={"Authorization": f"Bearer {key}"})
    scenario = load_scenario(ROOT / "scenarios" / "turin-all-meters.yaml")
    scenario.clock.duration = 20 * 60.0
    scenario.platform.tenant = "turin"
    scenario.platform.broker, scenario.platform.api_url, scenario.platform.api_key = broker_uri, platform.url, key
    summary = run_scenario(scenario, RunOptions(out=tmp_path, progress=False))
    m, links = summary.messages, summary.links
    assert links is not None and links.lost_in_link > 0  # wireless M-Bus is one-way: its losses are not resent
    assert m.readings_lost == links.lost_in_link and m.readings_stored == m.readings_sampled - links.lost_in_link
    paths = {p.meters: p for p in links.paths}  # every meter class, each on its own link
    assert {k: (p.section, p.technology) for k, p in paths.items()} == {
        "home_interval": ("meters.link", "plc_g3"), "home_1hz": ("meters.link_1hz", "home_4g"),
        "blink_detector": ("meters.link_1hz", "home_4g"), "substation": ("meters.substation_link", "ideal"),
        "heat": ("meters.utility.link", "wmbus"), "water": ("meters.utility.link", "wmbus"),
        "gas": ("meters.utility.link", "wmbus")}
    assert (paths["heat"].meter_count, paths["water"].meter_count, paths["gas"].meter_count) == (7, 20, 5)
    assert sum(p.lost_in_link for p in paths.values()) == links.lost_in_link
    assert paths["water"].lost_in_link > 0 and paths["substation"].lost_in_link == 0

    devices = api.get("/api/v1/devices").json()
    by_type: dict[str, list[dict]] = {}
    for d in devices:
        by_type.setdefault(d["type"], []).append(d)
    for kind in ("electricity_meter", "home_meter", "substation_meter", "blink_detector", "heat_meter",
                 "water_meter", "gas_meter", "switch"):
        assert by_type.get(kind), kind

    def quantities(device: str) -> tuple[int, set[str]]:
        readings = api.get(f"/api/v1/devices/{device}/readings").json()["readings"]
        return len(readings), set().union(*(r["q"] for r in readings)) if readings else set()

    n, q = quantities(by_type["home_meter"][0]["id"])
    assert n == 20 * 60  # one reading a second
    phase = by_type["home_meter"][0]["meta"]["phase"]
    assert f"electricity.voltage.{phase}" in q and len([x for x in q if "voltage" in x]) == 1
    n, q = quantities(by_type["substation_meter"][0]["id"])
    assert {"electricity.energy.reactive.import", "electricity.current.l2", "electricity.frequency",
            "electricity.power_factor.l3"} <= q
    heat = [quantities(d["id"]) for d in by_type["heat_meter"]]
    n, q = max(heat, key=lambda h: h[0])
    assert n == 4 and {"heating.energy", "heating.volume", "heating.flowrate", "heating.power",
                       "heating.temp.primary.inlet", "heating.temp.primary.outlet"} == q
    assert quantities(by_type["water_meter"][0]["id"])[1] == {"water.volume", "water.flowrate"}
    assert quantities(by_type["gas_meter"][0]["id"])[1] == {"gas.volume"}
    assert quantities(by_type["blink_detector"][0]["id"])[1] == {"electricity.energy.active.import",
                                                                  "electricity.power.active.total"}
    single = next(d for d in by_type["electricity_meter"] if d["phases"] == 1)
    assert len([x for x in quantities(single["id"])[1] if "voltage" in x]) == 1
    # Turin's homes are single-phase; three-phase residential meters (Hyllie's set) are in the end-to-end tests
