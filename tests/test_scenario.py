"""Scenario files: typed parsing, and every mistake reported with file, field and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridloop.cli import main
from gridloop.scenario.loader import ScenarioError, load_scenario
from gridloop.scenario.model import parse_duration

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_is_valid_and_typed():
    s = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    assert s.clock.duration == 86400.0
    assert s.clock.step == 60.0
    assert s.meters.interval == 300.0
    assert s.events[0].at == 12 * 3600.0


@pytest.mark.parametrize(("text", "seconds"), [("15min", 900), ("1d", 86400), ("10s", 10), (30, 30), ("1.5h", 5400)])
def test_durations_carry_units(text, seconds):
    assert parse_duration(text) == seconds


def test_three_mistakes_are_all_reported(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\n"
        "clock:\n  step: fortnight\n"
        "meters:\n  interval: 15min\n  typo_field: 1\n"
        "platform:\n  tenant: Not A Tenant\n"
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad)
    fields = {p.field for p in info.value.problems}
    assert fields == {"clock.step", "meters.typo_field", "platform.tenant"}
    assert all(p.file == str(bad) for p in info.value.problems)

    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: clock.step:" in err
    assert f"{bad}: meters.typo_field: unknown field" in err
    assert f"{bad}: platform.tenant:" in err
    assert "3 error(s)" in err


def test_cross_field_rules(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("name: x\nclock: {step: 1min, duration: 1h}\nmeters: {interval: 90s}\n"
                   "events: [{at: 2h, command: switch.open, device: sw1}]\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad)
    assert "whole number of clock.step" in str(info.value)


def test_not_yaml_and_missing_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(broken)
    with pytest.raises(ScenarioError, match="No such file"):
        load_scenario(tmp_path / "absent.yaml")


def test_validate_ok(capsys):
    assert main(["validate", str(ROOT / "scenarios" / "quickstart.yaml")]) == 0
    assert "valid" in capsys.readouterr().out


def test_the_scenario_a_run_writes_down_keeps_no_secret():
    from gridloop.scenario.loader import parse_scenario

    s = parse_scenario({"name": "x", "clock": {"start": "2026-01-15T00:00:00+01:00", "duration": "1h", "step": "1min"},
                        "grid": {"network": "1-LV-urban6--0-sw"},
                        "platform": {"api_url": "http://127.0.0.1:1", "api_key": "k3y-s3cret",
                                     "mqtt_username": "demo", "mqtt_password": "pa55word",
                                     "store": "mongodb://gridloop:st0re-pw@127.0.0.1:27017/db"}}, "test")
    text = s.redacted_json()
    assert not any(secret in text for secret in ("k3y-s3cret", "pa55word", "st0re-pw"))
    assert '"mqtt_username": "demo"' in text and "mongodb://gridloop:<redacted>@127.0.0.1:27017/db" in text


def test_validate_names_an_unknown_network_without_loading_a_grid(tmp_path, capsys):
    """An unknown grid.network fails validation with the file, the field, the valid kinds and the closest code;
    the check reads names only (pandapower and simbench stay unimported: a subprocess sees its own imports)."""
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: mvlv\ngrid: {network: 1-MVLV-rural-all-0-sww}\n")
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: grid.network: unknown network '1-MVLV-rural-all-0-sww'; " \
           "did you mean '1-MVLV-rural-all-0-sw'?" in err
    assert "SimBench code" in err and "kerber_dorfnetz" in err and "hyllie" in err
    good = tmp_path / "good.yaml"
    good.write_text("name: mvlv\ngrid: {network: 1-MVLV-urban-5.303-1-no_sw}\n")
    probe = ("import sys; from gridloop.cli import main; rc = main(['validate', sys.argv[1]]); "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandapower', 'simbench'})); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", probe, str(good)], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{good}: valid", "[]"]
