"""The contract of everything that crosses the loop: topics, payloads, quantities, commands, REST resources.

Devices, the platform, the SDK, services and tools all import it; ``docs/contract.md`` is generated in part
from it (``python -m gridloop.contract.document --write``), so the written and the coded contract cannot drift.
"""

from gridloop.contract.bounds import MAX_PAYLOAD_BYTES, SEQ_MAX, TS_MAX_MS, TS_MIN_MS
from gridloop.contract.commands import (
    COMMAND_STEPS,
    FINAL_STATUSES,
    RESPONSE_STATUSES,
    CommandMessage,
    CommandName,
    CommandResponse,
    CommandStatus,
    InvalidCommand,
    check_args,
)
from gridloop.contract.devices import AssetKind, DeviceType, Phase
from gridloop.contract.events import Event, EventType, Severity
from gridloop.contract.quantities import Quantity, Unit
from gridloop.contract.summary import RunSummary
from gridloop.contract.telemetry import Reading, Rejected
from gridloop.contract.topics import (
    INGEST_GROUP,
    KINDS,
    NAME,
    NAME_PATTERN,
    PREFIX,
    BrokerAddress,
    DeviceStatus,
    TopicKind,
    all_tenants,
    parse_topic,
    shared,
    topic,
)

__all__ = [
    "COMMAND_STEPS", "FINAL_STATUSES", "INGEST_GROUP", "KINDS", "MAX_PAYLOAD_BYTES", "NAME", "NAME_PATTERN", "PREFIX",
    "RESPONSE_STATUSES", "SEQ_MAX", "TS_MAX_MS", "TS_MIN_MS", "AssetKind", "BrokerAddress", "CommandMessage",
    "CommandName", "CommandResponse", "CommandStatus", "DeviceStatus", "DeviceType", "Event", "EventType",
    "InvalidCommand", "Phase", "Quantity", "Reading", "Rejected", "RunSummary", "Severity", "TopicKind", "Unit",
    "all_tenants", "check_args", "parse_topic", "shared", "topic",
]
