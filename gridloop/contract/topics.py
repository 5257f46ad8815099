"""MQTT topics, name rules and broker URIs shared by devices and the platform.

Neither the simulator nor the platform owns them; both sides import the contract, nothing else of each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "gridloop/v1"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
NAME = re.compile(NAME_PATTERN.removesuffix("$") + r"\Z")  # \Z: a trailing newline is no part of a name
INGEST_GROUP = "ingest"  # the platform's shared-subscription group for telemetry and events
SHARED = "$share"  # MQTT v5 shared subscriptions: $share/<group>/<filter>


class TopicKind(StrEnum):
    """The fourth level of a contract topic: what flows on it."""

    TELEMETRY = "telemetry"  # device, gateway or DIA → platform: TelemetryEnvelope
    EVENTS = "events"  # device → platform: EventEnvelope
    COMMANDS = "commands"  # platform → device or simulator controller: CommandMessage
    RESPONSES = "responses"  # device or simulator controller → platform: CommandResponse
    STATUS = "status"  # device → all, retained, also the MQTT last will: DeviceStatus
    ACKS = "acks"  # platform → publisher: DeliveryAck, the envelopes it has stored (or rejected for good)


KINDS = tuple(TopicKind)


class DeviceStatus(StrEnum):
    """Payload of a status topic (retained; ``offline`` is also the last will)."""

    ONLINE = "online"
    OFFLINE = "offline"


def topic(tenant: str, kind: TopicKind, device: str) -> str:
    """The topic a device publishes (or is commanded) on; ``device`` may be the wildcard ``+``."""
    return f"{PREFIX}/{tenant}/{kind}/{device}"


def all_tenants(kind: TopicKind) -> str:
    """Every tenant's and device's topic of one kind (a subscription filter for the platform's own clients)."""
    return f"{PREFIX}/+/{kind}/+"


def shared(kind: TopicKind, group: str = INGEST_GROUP, tenant: str = "+") -> str:
    """MQTT v5 shared subscription so that several workers split one stream."""
    return f"{SHARED}/{group}/{PREFIX}/{tenant}/{kind}/+"


def parse_topic(name: str) -> tuple[str, TopicKind, str] | None:
    """(tenant, kind, device) of a contract topic, or None if the topic is not one."""
    parts = name.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != PREFIX or parts[3] not in KINDS:
        return None
    if not (NAME.match(parts[2]) and NAME.match(parts[4])):
        return None
    return parts[2], TopicKind(parts[3]), parts[4]


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
