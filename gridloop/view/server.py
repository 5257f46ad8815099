"""Serves the view's app on loopback in a thread of its own (the run's step loop stays in the main thread)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette

LOOPBACK = "127.0.0.1"


class ViewServer:
    """uvicorn on a socket bound here (port 0: a free one, no window for another process to take it)."""

    def __init__(self, app: Starlette, port: int = 0) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets NODELAY
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((LOOPBACK, port))
        except OSError as exc:
            self._socket.close()
            raise ValueError(f"live view: cannot listen on {LOOPBACK}:{port}: {exc.strerror}") from None
        self._socket.set_inheritable(False)
        self.port = self._socket.getsockname()[1]
        self.url = f"http://{LOOPBACK}:{self.port}/"
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1,
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="view-http", daemon=True)

    def start(self) -> ViewServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"live view did not start on {self.url}")
            time.sleep(0.02)
        return self

    def wait(self) -> None:
        """Serve until interrupted (Ctrl-C)."""
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            pass

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()
