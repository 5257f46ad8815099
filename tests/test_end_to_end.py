"""The whole loop through a real broker: scenario → grid → meters → DIA → MQTT → platform → command → grid."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

import httpx
import pandapower.topology as top
import pandas as pd
import pytest

from gridloop.engine.run import RunOptions, run_scenario
from gridloop.grid_models.networks import load_network
from gridloop.mqtt_client import wait_for
from gridloop.scenario.loader import load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
NETWORK = "1-LV-urban6--0-sw"
SWITCH = 1


def _scenario(**over):
    data = {
        "name": "e2e", "seed": 3,
        "clock": {"start": "2026-01-15T11:00:00+01:00", "duration": "90min", "step": "1min"},
        "grid": {"network": NETWORK, "backend": "pgm"},
        "households": {"count": 60},
        "meters": {"interval": "1min"},
        "outputs": {"progress": False, "plots": False},
    }
    for key, value in over.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return parse_scenario(data, "test")


def _downstream_buses(switch: int) -> set[str]:
    """Buses that lose supply when the switch opens, by pandapower's own topology search."""
    net = copy.deepcopy(load_network(NETWORK))
    net.switch.loc[switch, "closed"] = False
    return {str(net.bus.name.at[b]) for b in top.unsupplied_buses(net)}


@pytest.mark.slow
def test_rest_command_opens_a_switch_and_meters_downstream_lose_voltage(platform, broker_uri, tmp_path):
    admin = {"Authorization": f"Bearer {platform.admin_key}"}
    key = httpx.post(f"{platform.url}/api/v1/tenants", json={"name": "lab"}, headers=admin).json()["api_key"]
    api = httpx.Client(base_url=platform.url, headers={"Authorization": f"Bearer {key}"})
    scenario = _scenario(
        clock={"realtime": True, "speed": 300.0},  # 1-min steps every 0.2 s of wall time
        platform={"tenant": "lab", "broker": broker_uri, "api_url": platform.url, "api_key": key},
    )
    done: list = []
    runner = threading.Thread(target=lambda: done.append(run_scenario(scenario, RunOptions(out=tmp_path))))
    runner.start()

    def stored() -> int:
        return api.get("/api/v1/metrics").json()["readings_stored"]

    def command(name: str) -> dict:
        cid = api.post(f"/api/v1/devices/sw{SWITCH}/commands", json={"name": name}).json()["id"]
        assert wait_for(lambda: api.get(f"/api/v1/commands/{cid}").json()["status"] == "executed", 20), name
        return api.get(f"/api/v1/commands/{cid}").json()

    assert wait_for(lambda: stored() >= 60 * 10, 60)  # ten samples in
    opened = command("switch.open")
    assert [s for s, _ in opened["history"]] == ["pending", "sent", "accepted", "executed"]
    assert wait_for(lambda: stored() >= 60 * 40, 60)
    command("switch.close")
    runner.join(120)
    assert done, "the run did not finish"
    result = done[0]

    applied = json.loads((tmp_path / "commands.json").read_text())
    t_open, t_close = (c["sim_time_s"] for c in applied)
    assert [c["command"] for c in applied] == ["switch.open", "switch.close"]
    readings = pd.read_parquet(tmp_path / "meter_readings.parquet")
    devices = api.get("/api/v1/devices").json()
    bus_of = {d["id"]: d["meta"]["bus"] for d in devices if d["type"] in ("electricity_meter", "home_meter")}
    dead_buses = _downstream_buses(SWITCH)
    downstream = {m for m, b in bus_of.items() if b in dead_buses}
    assert downstream and len(downstream) < len(bus_of)

    t = (readings.ts - readings.ts.min()) / 1000.0
    # a single-phase meter reports only its own phase's voltage
    v = readings[["electricity.voltage.l1", "electricity.voltage.l2", "electricity.voltage.l3"]].max(axis=1)
    down = readings.dev.isin(downstream)
    during = (t >= t_open) & (t < t_close)
    assert (v[down & during] == 0).all()  # from the sample at the step the command landed on
    assert (readings["electricity.power.active.total"][down & during] == 0).all()
    assert (v[down & (t < t_open)] > 200).all()
    assert (v[down & (t >= t_close)] > 200).all()  # closing restores supply
    assert (v[~down] > 200).all()
    # and the platform stored exactly what the meters sampled
    m = result.messages
    assert m.readings_stored == m.readings_published == m.readings_sampled == (60 + 1) * 90  # + substation
    assert m.readings_lost == 0
    assert result.commands.model_dump() == {"received": 2, "executed": 2, "rejected": 0, "failed": 0}
    assert result.realtime.enabled is True


@pytest.mark.slow
def test_same_seed_same_numbers_embedded_services(tmp_path):
    """Embedded broker and platform (child processes); the run is reproducible from its seed."""
    scenario = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    options = {"until": 3 * 3600.0, "progress": False}
    a = run_scenario(scenario, RunOptions(out=tmp_path / "a", **options))
    b = run_scenario(scenario, RunOptions(out=tmp_path / "b", **options))
    run_scenario(scenario, RunOptions(out=tmp_path / "c", seed=7, **options))
    timings = {"wall_s", "loop_wall_s", "queryable_latency"}  # wall-clock times differ from run to run
    assert a.model_dump(exclude=timings) == b.model_dump(exclude=timings)
    assert a.messages.readings_stored == a.messages.readings_published > 0
    probe = a.queryable_latency  # the probe meters' readings were all timed from publication to the REST API
    assert probe is not None and len(probe.meters) == 4 and probe.meters == b.queryable_latency.meters
    assert probe.unseen == 0 and probe.readings == 4 * 3 * 12 and 0 < probe.p50_s <= probe.p99_s <= probe.max_s
    assert a.messages.readings_lost == 0
    ra = pd.read_parquet(tmp_path / "a" / "meter_readings.parquet")
    rb = pd.read_parquet(tmp_path / "b" / "meter_readings.parquet")
    rc = pd.read_parquet(tmp_path / "c" / "meter_readings.parquet")
    pd.testing.assert_frame_equal(ra, rb)
    assert not ra["electricity.power.active.total"].equals(rc["electricity.power.active.total"])
    for name in ("summary.json", "grid_bus_vm_pu.parquet", "meter_readings.parquet", "feeder_voltages.png"):
        assert (tmp_path / "a" / name).stat().st_size > 0


@pytest.mark.slow
def test_fallback_broker_without_mosquitto(tmp_path, monkeypatch):
    """On a machine without Mosquitto the embedded broker is amqtt (MQTT 3.1.1); nothing is lost."""
    monkeypatch.setenv("GRIDLOOP_EMBEDDED_BROKER", "amqtt")
    summary = run_scenario(_scenario(), RunOptions(out=tmp_path, until=1800.0, progress=False))
    assert (tmp_path / "broker" / "amqtt.log").exists()
    m = summary.messages
    assert m.readings_sampled == (60 + 1) * 30  # homes and the substation meter
    assert m.readings_stored == m.readings_published == m.readings_sampled
    assert m.readings_lost == 0
