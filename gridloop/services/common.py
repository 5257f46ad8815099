"""Command-line plumbing shared by the reference services: connection arguments and a bounded run."""

from __future__ import annotations

import argparse
import os
import signal
import threading

from gridloop.sdk import PlatformSession


def connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", required=True, help="platform REST base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--key", default=os.environ.get("GRIDLOOP_API_KEY"),
                        help="tenant API key (or $GRIDLOOP_API_KEY)")
    parser.add_argument("--broker", required=True, help="mqtt://host:port")
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--run-for", type=float, default=None, help="stop after this many wall seconds")


def session(args: argparse.Namespace) -> PlatformSession:
    if not args.key:
        raise SystemExit("an API key is needed: --key or $GRIDLOOP_API_KEY")
    return PlatformSession(args.api, args.key, args.broker, args.tenant)


def stop_event() -> threading.Event:
    """An event set by SIGTERM or SIGINT, for a clean exit that still writes the service's log."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def run_until_stopped(run_for: float | None) -> None:
    """Block until SIGTERM/SIGINT or the optional time limit."""
    stop_event().wait(run_for)
