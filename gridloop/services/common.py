"""Command-line plumbing shared by the reference services: connection arguments and a bounded run."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from gridloop.sdk import PlatformSession


def connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", required=True, help="platform REST base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--key", default=os.environ.get("GRIDLOOP_API_KEY"),
                        help="tenant API key (or $GRIDLOOP_API_KEY)")
    parser.add_argument("--broker", required=True, help="mqtt://host:port")
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--run-for", type=float, default=None, help="stop after this many wall seconds")
    parser.add_argument("--gateway", default=None,
                        help="listen to this gateway's (DIA's) readings only, e.g. one substation's of many")


def session(args: argparse.Namespace) -> PlatformSession:
    """The tenant's session; its broker account from $GRIDLOOP_MQTT_USERNAME / $GRIDLOOP_MQTT_PASSWORD if set."""
    if not args.key:
        raise SystemExit("an API key is needed: --key or $GRIDLOOP_API_KEY")
    user = os.environ.get("GRIDLOOP_MQTT_USERNAME")
    credentials = (user, os.environ.get("GRIDLOOP_MQTT_PASSWORD", "")) if user else None
    return PlatformSession(args.api, args.key, args.broker, args.tenant, credentials=credentials,
                           gateway=args.gateway)


def stop_event() -> threading.Event:
    """An event set by SIGTERM or SIGINT, for a clean exit that still writes the service's log."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def run_until_stopped(run_for: float | None) -> None:
    """Block until SIGTERM/SIGINT or the optional time limit."""
    stop_event().wait(run_for)


def serve_readings(args: argparse.Namespace, build: Callable[[PlatformSession], Any],
                   banner: Callable[[Any], str]) -> int:
    """Run a service that reacts to readings until stopped, then write its decision log (``--log``)."""
    with session(args) as platform:
        service = build(platform)
        platform.on_readings(service.on_reading)
        print(banner(service), flush=True)
        run_until_stopped(args.run_for)
    if args.log:
        with open(args.log, "w") as fh:
            json.dump(service.log, fh, indent=1)
    return 0
