"""The platform as one running service: store + ingest workers + command dispatch + REST API.

Several services (replicas, each its own ``instance`` name) may run on one broker and one store; see
docs/scale-out/platform.md for what they share and what each keeps to itself.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time

import uvicorn

from gridloop.contract import BrokerAddress
from gridloop.mqtt_client import TlsFiles
from gridloop.platform.api import create_app
from gridloop.platform.commands import CommandDispatcher, default_instance
from gridloop.platform.ingest import IngestWorker
from gridloop.platform.retention import RetentionPolicy, RetentionTask
from gridloop.platform.store import open_store

log = logging.getLogger(__name__)
DEFAULT_CACHE_MAX_AGE_S = 5.0
INSTANCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")  # part of MQTT client ids: no '/', '+', '#'
STABLE_SESSION_EXPIRY_S = 3600  # a named instance: a crashed replica restarted under its name resumes its sessions
DERIVED_SESSION_EXPIRY_S = 300  # <hostname>-<pid>: nobody resumes it after a crash; outlive a broker restart only


def check_instance(name: str) -> str:
    if not INSTANCE.match(name):
        raise ValueError(f"instance name {name!r}: 1 to 63 letters, digits, '_', '.', '-'; first a letter or digit")
    return name


def _bind(host: str, port: int) -> socket.socket:
    """The API's listening socket (port 0: one the kernel picks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on connections of a socket whose proto says TCP; with
    # Nagle on, a response's body waits for the client's delayed ACK of its head (40 ms a request on Linux)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(False)
    return sock


class PlatformService:
    """Starts and stops everything `gridloop platform serve` runs; usable in-process too."""

    def __init__(
        self,
        broker_uri: str,
        store_uri: str,
        host: str = "127.0.0.1",
        port: int = 8080,
        ingest_workers: int = 1,
        admin_key: str | None = None,
        credentials: tuple[str, str] | None = None,
        ingest_group: str = "ingest",
        cache_max_age_s: float | None = None,
        retention: list[RetentionPolicy] | None = None,
        retention_period_s: float = 3600.0,
        instance: str | None = None,
        session_expiry_s: int | None = None,
        keep_session: bool = False,
        tls: TlsFiles | None = None,
    ) -> None:
        """``ingest_group`` names the MQTT v5 shared subscriptions of all replicas: telemetry, events and command
        responses (``$share/<group>/gridloop/v1/+/responses/+``, so each response is handled by one replica).

        ``instance``: this replica's name, unique among the replicas, in its MQTT client ids
        (``gridloop-<group>-<instance>-<n>``). A stable name (e.g. a StatefulSet pod's) lets a replica that
        crashed resume its persistent sessions when it comes back, with what the broker queued for it
        meanwhile; None: ``<hostname>-<pid>``, new at every start. ``session_expiry_s``: how long the broker
        keeps a crashed replica's sessions (default 3600 s for a named instance, 300 s otherwise).
        ``keep_session``: a graceful stop keeps the sessions subscribed (one replica restarted under its name
        then misses nothing); by default a graceful stop hands its share to the other replicas and ends them.
        ``tls``: CA, and the platform's own certificate and key, for an ``mqtts://`` broker.
        ``cache_max_age_s``: bound on the age of cached aggregate answers (0 disables; default
        $GRIDLOOP_CACHE_MAX_AGE_S or 5 s). ``retention``: per-tenant policies applied every ``retention_period_s``.
        """
        if cache_max_age_s is None:
            cache_max_age_s = float(os.environ.get("GRIDLOOP_CACHE_MAX_AGE_S", DEFAULT_CACHE_MAX_AGE_S))
        self.instance = check_instance(instance) if instance else default_instance()
        if session_expiry_s is None:
            session_expiry_s = STABLE_SESSION_EXPIRY_S if instance else DERIVED_SESSION_EXPIRY_S
        self.broker = BrokerAddress.parse(broker_uri)
        self.store = open_store(store_uri)
        self.workers = [
            IngestWorker(self.store, self.broker, i, credentials=credentials, group=ingest_group,
                         instance=self.instance, session_expiry_s=session_expiry_s, release_on_stop=not keep_session,
                         tls=tls)
            for i in range(ingest_workers)
        ]
        self.retention = RetentionTask(self.store, retention, retention_period_s) if retention else None
        self.dispatcher = CommandDispatcher(self.store, self.broker, credentials=credentials, instance=self.instance,
                                            group=ingest_group, session_expiry_s=session_expiry_s,
                                            release_on_stop=not keep_session, tls=tls)
        self.app = create_app(self.store, self.dispatcher, lambda: [w.snapshot() for w in self.workers], admin_key,
                              cache_max_age_s=cache_max_age_s, instance=self.instance)
        # bound here, not by uvicorn later: port 0 takes a free port with no window for another process to take it
        self._socket = _bind(host, port)
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="platform-api", daemon=True)
        self.url = f"http://{host}:{self.port}"

    def start(self) -> PlatformService:
        for worker in self.workers:
            worker.start()
        self.dispatcher.start()
        if self.retention is not None:
            self.retention.start()
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"REST API did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
        self.dispatcher.stop()
        if self.retention is not None:
            self.retention.stop()
        # all workers at once: each leaves its groups, drains and acknowledges (a graceful stop loses nothing)
        stopping = [threading.Thread(target=w.stop, name=f"stop-{w.client_id}") for w in self.workers]
        for t in stopping:
            t.start()
        for t in stopping:
            t.join()
        self.store.close()

    def __enter__(self) -> PlatformService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self, url_file: str | None = None) -> None:
        """Run until interrupted (Ctrl-C or SIGTERM); ``url_file`` gets the API's URL once it answers."""
        self.start()
        if url_file:
            tmp = f"{url_file}.tmp"
            with open(tmp, "w") as f:
                f.write(self.url + "\n")
            os.replace(tmp, url_file)
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
