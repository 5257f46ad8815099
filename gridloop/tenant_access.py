"""Who a run is on a shared platform: its tenant, API key and broker account.

Taken from ``gridloop run``'s flags, else from the file ``gridloop tenant create --out`` writes (mode 0600), else
from the environment. Secrets never need a command line: the API key and the broker password come from the file
or from ``$GRIDLOOP_API_KEY``, ``$GRIDLOOP_MQTT_PASSWORD_FILE`` or ``$GRIDLOOP_MQTT_PASSWORD``.
"""

from __future__ import annotations

import argparse
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from gridloop.contract.rest import TenantCredentials
from gridloop.contract.topics import NAME, NAME_PATTERN

ENV_TENANT = "GRIDLOOP_TENANT"
ENV_API_KEY = "GRIDLOOP_API_KEY"
ENV_MQTT_USERNAME = "GRIDLOOP_MQTT_USERNAME"
ENV_MQTT_PASSWORD = "GRIDLOOP_MQTT_PASSWORD"
ENV_MQTT_PASSWORD_FILE = "GRIDLOOP_MQTT_PASSWORD_FILE"


def tenant_name(text: str) -> str:
    if not NAME.match(text):
        raise argparse.ArgumentTypeError(f"tenant name {text!r} does not match {NAME_PATTERN}")
    return text


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """``gridloop run``'s options for running as one tenant of an already running platform."""
    run.add_argument("--tenant", type=tenant_name,
                     help=f"run as this tenant: its topics and devices (default: the scenario's platform.tenant; "
                          f"${ENV_TENANT})")
    run.add_argument("--credentials", type=Path,
                     help="the tenant's file from `gridloop tenant create --out FILE` (mode 0600): tenant, API key "
                          "and broker account; flags given as well win")
    run.add_argument("--api-key", help=f"tenant key (default ${ENV_API_KEY}; better in --credentials than here)")
    run.add_argument("--mqtt-username",
                     help=f"the tenant's broker account (default ${ENV_MQTT_USERNAME}); its password in the file "
                          f"${ENV_MQTT_PASSWORD_FILE} or in ${ENV_MQTT_PASSWORD}, never on the command line")


@dataclass(frozen=True)
class RunAccess:
    """The tenant, API key and broker account a run uses; None keeps the scenario's."""

    tenant: str | None = None
    api_key: str | None = None
    mqtt_username: str | None = None
    mqtt_password: str | None = None


def run_access(args: argparse.Namespace) -> RunAccess:
    """Flags first, then the credentials file, then the environment."""
    creds = read_credentials(args.credentials) if args.credentials else None
    user = args.mqtt_username or (creds.mqtt.username if creds else None) or os.environ.get(ENV_MQTT_USERNAME)
    password = creds.mqtt.password if creds and user == creds.mqtt.username else None
    return RunAccess(
        tenant=args.tenant or (creds.tenant if creds else None) or os.environ.get(ENV_TENANT) or None,
        api_key=args.api_key or (creds.api_key if creds else None) or os.environ.get(ENV_API_KEY) or None,
        mqtt_username=user or None,
        mqtt_password=password or (mqtt_password() if user else None))


def mqtt_password() -> str:
    """The broker password from ``$GRIDLOOP_MQTT_PASSWORD_FILE``, else ``$GRIDLOOP_MQTT_PASSWORD`` (else empty)."""
    path = os.environ.get(ENV_MQTT_PASSWORD_FILE)
    return Path(path).read_text().strip() if path else os.environ.get(ENV_MQTT_PASSWORD, "")


def read_credentials(path: Path) -> TenantCredentials:
    """A tenant's credentials file; refused when other users may read it (as ssh refuses such a key)."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"{path} holds a tenant's secrets but others may read it (mode {stat.S_IMODE(mode):04o}): "
                         f"chmod 600 {path}")
    return TenantCredentials.model_validate_json(path.read_bytes())


def write_credentials(path: Path, creds: TenantCredentials) -> None:
    """Write the credentials readable by their owner only (the file is created with mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode on O_CREAT: narrow it before the secret goes in
    with os.fdopen(fd, "w") as f:
        f.write(creds.model_dump_json(indent=2, exclude_none=True) + "\n")
