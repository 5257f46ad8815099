"""Commands to devices, their typed arguments, the responses devices send back and the status lifecycle."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

import msgspec

from gridloop.contract.bounds import DURATION_MAX_S, MAX_DETAIL, MAX_PAYLOAD_BYTES, Timestamp


class CommandName(StrEnum):
    SWITCH_OPEN = "switch.open"
    SWITCH_CLOSE = "switch.close"
    STORAGE_SETPOINT = "storage.setpoint"
    LOAD_CURTAIL = "load.curtail"
    LOAD_RELEASE = "load.release"
    TAP_SET = "tap.set"


class CommandStatus(StrEnum):
    """Where a command is in its lifecycle on the platform: pending → sent → accepted → a final status."""

    PENDING = "pending"
    SENT = "sent"
    ACCEPTED = "accepted"
    EXECUTED = "executed"
    REJECTED = "rejected"
    FAILED = "failed"
    EXPIRED = "expired"


S = CommandStatus
FINAL_STATUSES = frozenset({S.EXECUTED, S.REJECTED, S.FAILED, S.EXPIRED})
ResponseStatus = Literal["accepted", "executed", "rejected", "failed"]  # what a device may answer
RESPONSE_STATUSES = frozenset({S.ACCEPTED, S.EXECUTED, S.REJECTED, S.FAILED})
# status -> the statuses it may follow: a status only moves forward, whichever replica records what
COMMAND_STEPS: dict[CommandStatus, frozenset[CommandStatus]] = {
    S.PENDING: frozenset(),
    S.SENT: frozenset({S.PENDING}),
    S.ACCEPTED: frozenset({S.PENDING, S.SENT}),
    S.EXECUTED: frozenset({S.PENDING, S.SENT, S.ACCEPTED}),
    S.REJECTED: frozenset({S.PENDING, S.SENT, S.ACCEPTED}),
    S.FAILED: frozenset({S.PENDING, S.SENT, S.ACCEPTED}),
    S.EXPIRED: frozenset({S.PENDING, S.SENT}),  # once accepted, the outcome is the device's to tell
}

POWER_LIMIT_KW = 1e6
TAP_LIMIT = 100


class NoArgs(msgspec.Struct, forbid_unknown_fields=True):
    """A command without arguments: the device is what it acts on."""


class StorageSetpointArgs(msgspec.Struct, forbid_unknown_fields=True):
    p_kw: Annotated[float, msgspec.Meta(ge=-POWER_LIMIT_KW, le=POWER_LIMIT_KW,
                                        description="kW, positive charges the battery")]


class LoadCurtailArgs(msgspec.Struct, forbid_unknown_fields=True):
    limit_kw: Annotated[float, msgspec.Meta(ge=0, le=POWER_LIMIT_KW, description="kW the load may draw")]
    duration_s: Annotated[int, msgspec.Meta(ge=1, le=DURATION_MAX_S, description="seconds until released")]


class TapSetArgs(msgspec.Struct, forbid_unknown_fields=True):
    position: Annotated[int, msgspec.Meta(ge=-TAP_LIMIT, le=TAP_LIMIT, description="tap position")]


CommandArgs = NoArgs | StorageSetpointArgs | LoadCurtailArgs | TapSetArgs
COMMAND_ARGS: dict[CommandName, type[msgspec.Struct]] = {
    CommandName.SWITCH_OPEN: NoArgs,
    CommandName.SWITCH_CLOSE: NoArgs,
    CommandName.STORAGE_SETPOINT: StorageSetpointArgs,
    CommandName.LOAD_CURTAIL: LoadCurtailArgs,
    CommandName.LOAD_RELEASE: NoArgs,
    CommandName.TAP_SET: TapSetArgs,
}


class CommandMessage(msgspec.Struct):
    """Platform → device on ``…/commands/{device}``; ``args`` as checked by :func:`check_args`."""

    v: Literal[1]
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    ts: Timestamp
    name: CommandName
    args: dict[str, float | int] = msgspec.field(default_factory=dict)
    expires: Timestamp | None = None


class CommandResponse(msgspec.Struct):
    """Device → platform on ``…/responses/{device}``."""

    v: Literal[1]
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    ts: Timestamp
    status: ResponseStatus
    detail: Annotated[str, msgspec.Meta(max_length=MAX_DETAIL)] = ""


class InvalidCommand(ValueError):
    """A command whose name or arguments break the contract (the message says which and why)."""


def check_args(name: str, args: object) -> msgspec.Struct:
    """The typed arguments of command ``name``; InvalidCommand with the reason if name or arguments are bad.

    Whole floats are accepted for integer arguments (``600.0`` seconds), booleans never count as numbers.
    """
    try:
        command = CommandName(name)
    except ValueError:
        known = ", ".join(c.value for c in CommandName)
        raise InvalidCommand(f"unknown command {name!r}; known: {known}") from None
    if not isinstance(args, dict):
        raise InvalidCommand(f"arguments of {command} must be an object")
    spec = COMMAND_ARGS[command]
    if extra := sorted(set(args) - set(spec.__struct_fields__)):
        raise InvalidCommand(f"unexpected argument(s) for {command}: {', '.join(map(str, extra))}")
    if missing := sorted(set(spec.__struct_fields__) - set(args)):
        raise InvalidCommand(f"missing argument(s) for {command}: {', '.join(missing)}")
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in args.values()):
        raise InvalidCommand(f"arguments of {command} must be numbers (not text, true/false or null)")
    try:
        return msgspec.convert(args, spec, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidCommand(f"{command}: {exc}") from None


def args_dict(args: msgspec.Struct) -> dict[str, float | int]:
    return msgspec.structs.asdict(args)


_command = msgspec.json.Decoder(CommandMessage)
_response = msgspec.json.Decoder(CommandResponse)
_encoder = msgspec.json.Encoder()


def decode_command(payload: bytes) -> CommandMessage:
    """A command message, its arguments checked; InvalidCommand with the reason otherwise."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidCommand("payload too large")
    try:
        message = _command.decode(payload)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise InvalidCommand(f"not a v1 command: {exc}") from None
    check_args(message.name, message.args)
    return message


def decode_response(payload: bytes) -> CommandResponse:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidCommand("payload too large")
    try:
        return _response.decode(payload)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise InvalidCommand(f"not a v1 command response: {exc}") from None


def encode(message: CommandMessage | CommandResponse) -> bytes:
    return _encoder.encode(message)
