"""The records every store takes and gives, the command status steps they enforce, and API key hashing."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

from gridloop.contract import COMMAND_STEPS, FINAL_STATUSES, CommandStatus


def hash_key(api_key: str) -> str:
    """API keys are stored hashed; a leaked store does not leak keys."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return "glk_" + secrets.token_urlsafe(24)


# A command's status only moves forward (the contract's COMMAND_STEPS: status -> the statuses it may follow).
# Several platform replicas (and a late or repeated response) may try any update in any order; the store applies
# only forward steps, atomically, so a late 'accepted' never overwrites 'executed' and a final status stays.
FINAL = FINAL_STATUSES
OPEN_STATUSES = tuple(s for s in CommandStatus if s not in FINAL_STATUSES)  # pending, sent, accepted


def command_step_allowed(current: str, new: str, same: bool = False) -> bool:
    """Whether a command in ``current`` may move to ``new``; ``same``: re-recording a non-final status too."""
    return current in COMMAND_STEPS.get(new, ()) or (same and current == new and current not in FINAL)


def late_step(current: str, reported: str, recorded: list[str]) -> bool:
    """An earlier step reported after a later one was stored (two replicas, each handling one response): it goes
    into the history, not the status. Pending is the platform's own step, never reported."""
    return reported != CommandStatus.PENDING and reported in COMMAND_STEPS.get(current, ()) and \
        reported not in recorded


def in_lifecycle_order(history: list) -> list:
    """[[status, ts_ms], ...] in the order of the lifecycle (a late step is stored after the later one, and its ts,
    the platform's receipt time, may be later too); repeated steps (a re-send) keep their order."""
    return sorted(history, key=lambda step: len(COMMAND_STEPS.get(step[0], ())))


# (tenant, device) -> registered look-ups are cached per process (ingest asks for every device it sees); a registry
# change made through another replica is seen here after at most this long (store/registry_cache.py).
OWNER_CACHE_S = 5.0


@dataclass
class DeviceRecord:
    """A provisioned device of one tenant."""

    tenant: str
    id: str
    type: str
    phases: int = 1
    gateway: str | None = None
    asset: str | None = None
    status: str = "unknown"  # online / offline / unknown, from the retained status topic
    meta: dict = field(default_factory=dict)


@dataclass
class AssetRecord:
    """A person, house, location, substation or feeder that devices are assigned to."""

    tenant: str
    id: str
    kind: str
    name: str = ""
    parent: str | None = None


@dataclass
class CommandRecord:
    """A command and where it is in its lifecycle."""

    tenant: str
    id: str
    device: str
    name: str
    args: dict
    ts: int
    expires: int | None
    status: str = CommandStatus.PENDING
    detail: str = ""
    updated: int = 0
    history: list = field(default_factory=list)  # [[status, ts_ms], ...]


@dataclass(frozen=True)
class StoredReading:
    """A reading as it comes back from the store."""

    ts: int
    seq: int | None
    q: dict[str, float]
