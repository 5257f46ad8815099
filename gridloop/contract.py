"""The interface contract as code: MQTT topics, name rules and URIs shared by devices and the platform.

Neither the simulator nor the platform owns it; both sides import it, nothing else of each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "gridloop/v1"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
KINDS = ("telemetry", "events", "commands", "responses", "status")
COMMAND_STATUSES = ("pending", "sent", "accepted", "executed", "rejected", "failed", "expired")
FINAL_STATUSES = frozenset({"executed", "rejected", "failed", "expired"})


def topic(tenant: str, kind: str, device: str) -> str:
    """The topic a device publishes (or is commanded) on."""
    return f"{PREFIX}/{tenant}/{kind}/{device}"


def shared(kind: str, group: str = "ingest", tenant: str = "+") -> str:
    """MQTT v5 shared subscription so that several workers split one stream."""
    return f"$share/{group}/{PREFIX}/{tenant}/{kind}/+"


def parse_topic(name: str) -> tuple[str, str, str] | None:
    """(tenant, kind, device) of a contract topic, or None if the topic is not one."""
    parts = name.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != PREFIX or parts[3] not in KINDS:
        return None
    if not (NAME.match(parts[2]) and NAME.match(parts[4])):
        return None
    return parts[2], parts[3], parts[4]


@dataclass(frozen=True)
class BrokerAddress:
    """Where an MQTT broker listens."""

    host: str
    port: int
    tls: bool = False

    @classmethod
    def parse(cls, uri: str) -> BrokerAddress:
        m = re.match(r"^(mqtts?)://([^:/]+):(\d+)/?$", uri)
        if not m:
            raise ValueError(f"broker URI must look like mqtt://host:port or mqtts://host:port, got {uri!r}")
        return cls(m.group(2), int(m.group(3)), m.group(1) == "mqtts")

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"
