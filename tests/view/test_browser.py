"""The live view in a real browser: headless Chromium follows a short quick start whose feeder switch opens by command.

`gridloop run --view` runs as its own process (embedded broker and platform, real time at one step a second);
the page must count steps, grey out the buses the switch cuts off, and show the command's lifecycle up to
executed; started with a view key, the page sends a command of its own. A screenshot goes to the run directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEAD = "#9e9e9e"  # the page's colour of a de-energised bus
VIEW_KEY = "view-key-of-this-test"
LAUNCH_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _short_quickstart(tmp_path: Path) -> Path:
    """The quick start cut to 14 one-minute steps of its evening peak in real time (1 step/s); sw1 opens at 5 min."""
    s = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    s["name"] = "quickstart-view"
    s["clock"].update(start="2026-01-15T17:30:00+01:00", duration="14min", realtime=True, speed=60)  # evening peak
    s["events"] = [e for e in s["events"] if e["command"] == "switch.open"]
    s["events"][0]["at"] = "5min"
    s["outputs"] = {"dir": str(tmp_path / "run"), "plots": False}
    path = tmp_path / "quickstart-view.yaml"
    path.write_text(yaml.safe_dump(s))
    return path


def _start_run(scenario: Path, tmp_path: Path) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-c", "from gridloop.cli import main; raise SystemExit(main())", "run", str(scenario),
           "--view", "--no-progress", "--view-key", VIEW_KEY]
    with open(tmp_path / "run.log", "w") as log:  # the child keeps its own handle
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("live view: "):
            return proc, line.split()[-1]
        if not line and proc.poll() is not None:
            break
    _stop(proc)
    raise AssertionError("no live view URL; log:\n" + (tmp_path / "run.log").read_text()[-3000:])


def _stop(proc: subprocess.Popen) -> None:
    """End a run that is still going: Ctrl-C first (it stops its broker and platform), then its whole group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever of its group is left (its own session)
    proc.wait()


def _fills(page) -> list[str]:
    return page.eval_on_selector_all("circle.bus", "cs => cs.map(c => c.getAttribute('fill'))")


def _launch(pw, chromium: str, profile: Path):
    return pw.chromium.launch_persistent_context(  # a fresh profile of its own
        str(profile), executable_path=chromium, headless=True, args=LAUNCH_FLAGS,
        viewport={"width": 1500, "height": 950})


def _follow_live_run(page, url: str, shot: Path) -> None:
    """Steps advance, the command ends executed with its whole lifecycle, the cut-off buses turn grey."""
    page.goto(url)
    page.wait_for_function("() => +document.getElementById('step').dataset.step >= 1", timeout=30_000)
    first = int(page.get_attribute("#step", "data-step"))
    page.wait_for_function(f"() => +document.getElementById('step').dataset.step > {first}", timeout=10_000)
    before = _fills(page)
    assert len(before) > 10 and DEAD not in before, "every bus is supplied before the switch opens"
    # the command, sent by the scenario through the platform, ends executed, with its whole lifecycle
    # (pending is the platform's own record, read over REST shortly after the broker told the rest)
    page.wait_for_selector('.command[data-status="executed"] span.done[data-step="pending"]', timeout=30_000)
    row = page.query_selector('.command[data-status="executed"]')
    assert "sw1" in row.inner_text() and "switch.open" in row.inner_text()
    done = row.eval_on_selector_all(".lifecycle span.done", "ss => ss.map(s => s.dataset.step)")
    assert done == ["pending", "sent", "accepted", "executed"]
    # the buses the switch cut off turn grey (their colour changed from the supplied one)
    page.wait_for_function(f"() => [...document.querySelectorAll('circle.bus')]"
                           f".some(c => c.getAttribute('fill') === '{DEAD}')", timeout=10_000)
    after = _fills(page)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b and b == DEAD]
    assert changed, "no bus lost its supply colour when sw1 opened"
    assert page.get_attribute('rect.switch[data-switch="sw1"]', "class") == "switch open"
    supplied = next(i for i, f in enumerate(after) if f != DEAD
                    and page.get_attribute(f'circle.bus[data-bus="{i}"]', "data-meters") != "0")
    page.hover(f'circle.bus[data-bus="{supplied}"]')  # its meters, their latest readings and completeness
    page.wait_for_selector("#bus-info:not([hidden]) table", timeout=5_000)
    assert page.locator("#bus-info tr").count() >= 2
    page.screenshot(path=str(shot))


def _send_from_page(page) -> None:
    """The run was started with a view key: the page sends a command with it, and is refused without it."""
    page.select_option("#cmd-device", "sw5")
    page.select_option("#cmd-name", "switch.open")
    page.fill("#cmd-key", "not-the-key")
    page.click("#command-form button")
    page.wait_for_function("() => document.getElementById('cmd-result').textContent.includes('does not take')")
    page.fill("#cmd-key", VIEW_KEY)
    page.click("#command-form button")
    page.wait_for_function("() => document.getElementById('cmd-result').textContent.startsWith('sent ')")
    row = page.wait_for_selector('.command[data-status="executed"]:has-text("sw5")', timeout=20_000)
    assert "switch.open" in row.inner_text()
    page.wait_for_selector('rect.switch.open[data-switch="sw5"]', timeout=5_000)


def _replay_finished_run(page, run_dir: Path) -> None:
    """`gridloop view RUN_DIR`'s page replays every recorded step and the executed command."""
    from gridloop.view.replay import start_replay

    server, hub, replay = start_replay(run_dir, rate=40)
    try:
        page.goto(server.url)
        page.wait_for_selector('#status:text("finished")', timeout=20_000)
        assert page.get_attribute("#step", "data-step") == page.inner_text("#steps-total") == "14"
        assert page.locator('.command[data-status="executed"]').count() == 2  # the scenario's and the page's
        assert DEAD in _fills(page)  # the switch stayed open to the end
    finally:
        replay.stop()
        hub.stop()
        server.stop()


@pytest.mark.timeout(120)
def test_page_follows_a_run_and_its_switch_command(chromium_binary, tmp_path):
    from playwright.sync_api import sync_playwright

    proc, url = _start_run(_short_quickstart(tmp_path), tmp_path)
    assert url.startswith("http://127.0.0.1:")
    run_dir, shot = tmp_path / "run", tmp_path / "run" / "live_view.png"
    try:
        with sync_playwright() as pw:
            browser = _launch(pw, chromium_binary, tmp_path / "chromium")
            page = browser.new_page()
            _follow_live_run(page, url, shot)
            _send_from_page(page)
            assert proc.wait(timeout=60) == 0, (tmp_path / "run.log").read_text()[-3000:]
            _replay_finished_run(browser.new_page(), run_dir)
            browser.close()
    finally:
        _stop(proc)
    assert shot.stat().st_size > 10_000
    if keep := os.environ.get("GRIDLOOP_VIEW_SCREENSHOT"):  # where to keep a copy (the README's image)
        Path(keep).write_bytes(shot.read_bytes())
