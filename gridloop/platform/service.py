"""The platform as one running service: store + ingest workers + command dispatch + REST API."""

from __future__ import annotations

import logging
import os
import threading
import time

import uvicorn

from gridloop.contract import BrokerAddress
from gridloop.platform.api import create_app
from gridloop.platform.commands import CommandDispatcher
from gridloop.platform.ingest import IngestWorker
from gridloop.platform.retention import RetentionPolicy, RetentionTask
from gridloop.platform.store import open_store

log = logging.getLogger(__name__)
DEFAULT_CACHE_MAX_AGE_S = 5.0


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
    ) -> None:
        """``ingest_group`` names the MQTT v5 shared subscription; a restarted worker resumes its session.

        ``cache_max_age_s``: bound on the age of cached aggregate answers (0 disables; default
        $GRIDLOOP_CACHE_MAX_AGE_S or 5 s). ``retention``: per-tenant policies applied every ``retention_period_s``.
        """
        if cache_max_age_s is None:
            cache_max_age_s = float(os.environ.get("GRIDLOOP_CACHE_MAX_AGE_S", DEFAULT_CACHE_MAX_AGE_S))
        self.broker = BrokerAddress.parse(broker_uri)
        self.store = open_store(store_uri)
        self.workers = [
            IngestWorker(self.store, self.broker, i, credentials=credentials, group=ingest_group)
            for i in range(ingest_workers)
        ]
        self.retention = RetentionTask(self.store, retention, retention_period_s) if retention else None
        self.dispatcher = CommandDispatcher(self.store, self.broker, credentials=credentials)
        self.app = create_app(self.store, self.dispatcher, lambda: [w.snapshot() for w in self.workers], admin_key,
                              cache_max_age_s=cache_max_age_s)
        config = uvicorn.Config(self.app, host=host, port=port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="platform-api", daemon=True)
        self.url = f"http://{host}:{port}"

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
        self.dispatcher.stop()
        if self.retention is not None:
            self.retention.stop()
        for worker in self.workers:
            worker.stop()
        self.store.close()

    def __enter__(self) -> PlatformService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run until interrupted (Ctrl-C or SIGTERM)."""
        self.start()
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
