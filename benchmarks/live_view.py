"""Does the live view slow the loop? The quick start in real time at one step a second with many meters, three ways:
without the view, with ``--view`` and no page open, and with a headless Chromium page open for the whole run.

Reports per run the pacer's max lag and late steps (from summary.json), the loop's wall time, CPU seconds of the
run and its children (broker, platform), and for the open page the frames it received.

Run:  .venv/bin/python benchmarks/live_view.py [--steps 120] [--meters 10000] [--repeats 3] [--write]
(from the repo root; needs Debian's chromium and Playwright for Python; loopback only)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LAUNCH_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]
MODES = ("no view", "--view, no page", "--view, page open")


def scenario(steps: int, meters: int, work: Path) -> Path:
    """The quick start's grid, homes and switch command; `steps` one-minute steps at one a second; water meters
    (a reading a minute) make up the rest of `meters`, as `gridloop study --sweep meters=` does."""
    s = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    s["name"] = "live-view-bench"
    s["clock"].update(start="2026-01-15T17:00:00+01:00", duration=f"{steps}min", realtime=True, speed=60)
    s["meters"].update(interval="1min", utility={"water_meters": max(0, meters - 102), "water_interval": "1min"})
    s["events"] = [{**s["events"][0], "at": f"{steps // 2}min"}]
    s["outputs"] = {"plots": False}
    path = work / "scenario.yaml"
    path.write_text(yaml.safe_dump(s))
    return path


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_once(path: Path, out: Path, mode: str, chromium: str | None) -> dict:
    cmd = [sys.executable, "-c", "from gridloop.cli import main; raise SystemExit(main())", "run", str(path),
           "--out", str(out), "--no-progress"] + ([] if mode == MODES[0] else ["--view"])
    frames = None
    with contextlib.ExitStack() as stack:
        page = None
        if mode == MODES[2]:  # the browser is up before the run starts: its own start-up is not the view's cost
            page = stack.enter_context(_browser(chromium, out.parent / f"{out.name}-chromium"))
        cpu0, wall0 = _cpu_children(), time.monotonic()
        with open(out.parent / f"{out.name}.log", "w") as log:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            if page is not None:
                frames = _watch(proc, page)
            proc.communicate(timeout=3600)
        finally:
            if proc.poll() is None:  # the benchmark failed midway: the run and its broker and platform go too
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    if proc.returncode != 0:
        raise SystemExit(f"{mode}: run failed, see {out}.log")
    summary = json.loads((out / "summary.json").read_text())
    rt = summary["realtime"]
    return {"mode": mode, "max_lag_ms": round(rt["max_lag_s"] * 1000, 1), "late_steps": rt["late_steps"],
            "steps": summary["steps"], "meters": summary["meters"], "loop_wall_s": summary["loop_wall_s"],
            "wall_s": round(time.monotonic() - wall0, 1), "cpu_s": round(_cpu_children() - cpu0, 1),
            "stored": summary["messages"]["readings_stored"], "lost": summary["messages"]["readings_lost"],
            "page_frames": frames}


@contextlib.contextmanager
def _browser(chromium: str | None, profile: Path):
    """A headless Chromium page, blank until the run's URL is known."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(str(profile), executable_path=chromium, headless=True,
                                                        args=LAUNCH_FLAGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def _watch(proc: subprocess.Popen, page) -> int:
    """Open the page as soon as the run prints its URL; keep it open to the end; count the frames it took in."""
    url = None
    while url is None:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("the run ended without a live view URL")
        if line.startswith("live view: "):
            url = line.split()[-1]
    page.goto(url)
    page.wait_for_function("() => document.getElementById('status').textContent === 'finished'",
                           timeout=3_600_000, polling=500)
    return int(page.evaluate("() => window.gridloopFrames || 0"))


def table(rows: list[dict]) -> str:
    head = "| mode | steps | meters | max lag ms | late steps | loop wall s | CPU s (run + broker + platform) | " \
           "stored | lost | frames to the page |\n|---|---|---|---|---|---|---|---|---|---|\n"
    cells = ("mode", "steps", "meters", "max_lag_ms", "late_steps", "loop_wall_s", "cpu_s", "stored", "lost",
             "page_frames")
    return head + "".join("| " + " | ".join("–" if r[c] is None else str(r[c]) for c in cells) + " |\n" for r in rows)


def per_mode(rows: list[dict]) -> str:
    """Each mode over its rounds: median and worst of the max lag, late steps in all, mean CPU."""
    out = "| mode | rounds | max lag ms, median | max lag ms, worst | late steps, all rounds | CPU s, mean |\n" \
          "|---|---|---|---|---|---|\n"
    for mode in MODES:
        mine = [r for r in rows if r["mode"] == mode]
        lags = [r["max_lag_ms"] for r in mine]
        out += (f"| {mode} | {len(mine)} | {statistics.median(lags)} | {max(lags)} | "
                f"{sum(r['late_steps'] for r in mine)} | {round(statistics.mean(r['cpu_s'] for r in mine), 1)} |\n")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=120, help="one-minute steps, one a wall second")
    ap.add_argument("--meters", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=1, help="rounds of the three modes, interleaved (the machine is "
                                                          "shared: lag spikes from other work hit any mode)")
    ap.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS_view.md")
    args = ap.parse_args()
    chromium = os.environ.get("GRIDLOOP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    with tempfile.TemporaryDirectory(prefix="gridloop-view-bench-") as tmp:
        work = Path(tmp)
        path = scenario(args.steps, args.meters, work)
        rows = []
        for k in range(args.repeats):
            for i, mode in enumerate(MODES):
                rows.append(run_once(path, work / f"run{k}-{i}", mode, chromium))
                print(json.dumps(rows[-1]), flush=True)
    text = table(rows) + "\n" + per_mode(rows)
    print(text)
    if args.write:
        with open(ROOT / "benchmarks" / "RESULTS_view.md", "a") as f:
            f.write(f"\n### {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
                    f"`python benchmarks/live_view.py --steps {args.steps} --meters {args.meters} "
                    f"--repeats {args.repeats} --write`\n\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
