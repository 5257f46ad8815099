"""The view's web app: the page and its assets, the drawing, the state so far, the event stream, commands.

Everything the page needs is in the package (``static/``): it works with no internet.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Callable
from importlib import resources

import msgspec
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gridloop.contract import CommandName, CommandStatus
from gridloop.view.hub import FrameHub
from gridloop.view.state import LoopState
from gridloop.view.topology import Topology

STATIC = resources.files("gridloop.view") / "static"
KEEPALIVE_S = 15.0
LIFECYCLE = [CommandStatus.PENDING, CommandStatus.SENT, CommandStatus.ACCEPTED, CommandStatus.EXECUTED]
KEY_HEADER = "x-gridloop-view-key"


class CommandRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A command the page sends (only with the run's view key)."""

    device: str
    name: CommandName
    args: dict[str, float | int] = msgspec.field(default_factory=dict)


# sends a command through the platform's API and returns its id
CommandSend = Callable[[str, str, dict], str]


def create_view_app(hub: FrameHub, state: LoopState, topology: Topology, info: dict,
                    send: CommandSend | None = None, command_key: str | None = None) -> Starlette:
    """``info``: the run's name and mode; ``send`` with ``command_key``: the page may send commands."""
    can_command = send is not None and bool(command_key)
    drawing = orjson.dumps({
        **info, "topology": msgspec.to_builtins(topology), "lifecycle": [str(s) for s in LIFECYCLE],
        "final": [str(s) for s in (CommandStatus.EXECUTED, CommandStatus.REJECTED, CommandStatus.FAILED,
                                    CommandStatus.EXPIRED)],
        "can_command": can_command, "command_names": [str(n) for n in CommandName],
        "steps_total": state.steps_total, "meters_total": state.meters_total,
    }, option=orjson.OPT_NON_STR_KEYS)

    async def page(request: Request) -> Response:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    async def drawing_of(request: Request) -> Response:
        return Response(drawing, media_type="application/json")

    async def history(request: Request) -> Response:
        return Response(orjson.dumps({"history": state.history}), media_type="application/json")

    async def bus(request: Request) -> Response:
        index = int(request.path_params["index"])
        ids = topology.meters_by_bus.get(index, [])
        return JSONResponse({"bus": index, "meters": state.meters(ids)})

    async def events(request: Request) -> Response:
        return StreamingResponse(_stream(hub), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def command(request: Request) -> Response:
        given = request.headers.get(KEY_HEADER, "")
        if not can_command or not hmac.compare_digest(given.encode(), (command_key or "").encode()):
            return JSONResponse({"detail": "this run's view does not take commands with that key"}, 403)
        try:
            wanted = msgspec.json.decode(await request.body(), type=CommandRequest)
        except msgspec.ValidationError as exc:
            return JSONResponse({"detail": str(exc)}, 422)
        try:
            cid = await asyncio.to_thread(send, wanted.device, str(wanted.name), dict(wanted.args))
        except Exception as exc:  # the platform's refusal, shown on the page
            return JSONResponse({"detail": str(exc)}, 409)
        return JSONResponse({"id": cid}, 202)

    routes = [
        Route("/", page), Route("/api/drawing", drawing_of), Route("/api/history", history),
        Route("/api/bus/{index:int}", bus), Route("/events", events),
        Route("/api/commands", command, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    return Starlette(routes=routes)


async def _stream(hub: FrameHub) -> AsyncIterator[bytes]:
    """Server-sent events: the newest frame whenever there is one (frames a slow page missed are skipped)."""
    sub = hub.subscribe()
    try:
        yield b"retry: 1000\n\n"
        while True:
            if hub.version != sub.seen and hub.latest:
                sub.seen = hub.version
                yield b"data: " + hub.latest + b"\n\n"
                continue
            if hub.closed:
                return
            try:
                await asyncio.wait_for(sub.event.wait(), KEEPALIVE_S)
            except TimeoutError:
                yield b": keepalive\n\n"
            sub.event.clear()
    finally:
        hub.unsubscribe(sub)
