"""The broker and platform a run talks to, started before the engine so they boot while it is imported.

``gridloop run`` starts them (:func:`start_run`) before it imports the engine (numpy, pandas, the models,
~0.6 s): the platform's child process boots meanwhile on the other core instead of after it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gridloop.broker import EmbeddedBroker
from gridloop.embedded_platform import EmbeddedPlatform
from gridloop.scenario.model import Scenario
from gridloop.scenario.overrides import RunOptions, RunRefused, resolve

if TYPE_CHECKING:
    from gridloop.sdk import PlatformClient


RUN_LOCK = "run.lock"


def run_dir_of(s: Scenario, options: RunOptions) -> Path:
    run_dir = Path(options.out) if options.out else Path(s.outputs.dir.format(scenario=s.name))
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


@contextlib.contextmanager
def _own_run_dir(run_dir: Path):
    """Hold the run directory for this run alone: two runs in one directory would share its DIA outbox (one
    run resending the other's envelopes), its embedded store and its outputs."""
    with (run_dir / RUN_LOCK).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunRefused(f"{run_dir} is the directory of a run still going on: give each run its own --out"
                             ) from None
        yield  # the lock goes with the file, also when the process dies


class RunServices(contextlib.ExitStack):
    """Broker and platform for one run: embedded ones are started here and stopped on exit.

    ``ready=False`` only starts them: the caller does other work while the platform boots, then calls
    :meth:`ready` before it uses :attr:`api`.
    """

    api: PlatformClient  # set by ready()

    def __init__(self, scenario: Scenario, run_dir: Path, ready: bool = True) -> None:
        super().__init__()
        self._platform: EmbeddedPlatform | None = None
        try:
            self._start(scenario, run_dir)
            if ready:
                self.ready()
        except BaseException:
            self.close()  # what did start must not outlive a failed start
            raise

    def _start(self, scenario: Scenario, run_dir: Path) -> None:
        p = scenario.platform
        self._scenario = scenario
        self.broker: EmbeddedBroker | None = None
        self.enter_context(_own_run_dir(run_dir))
        self.credentials = _given_credentials(scenario)  # the tenant's broker account
        if p.broker is None:  # the run's own broker, closed to anonymous clients, with accounts for this run
            self.broker = EmbeddedBroker(workdir=str(run_dir / "broker"), tenants=[p.tenant]).start()
            self.callback(self.broker.stop)
            self.credentials = self.broker.tenant_credentials.get(p.tenant, self.credentials)
        self.broker_uri = p.broker or self.broker.uri
        if p.api_url is None:
            if p.store is None:  # the embedded store belongs to this run: a rerun starts from an empty one
                for old in run_dir.glob("store.db*"):
                    old.unlink()
            store = p.store or f"sqlite:///{(run_dir / 'store.db').resolve()}"
            self._platform = EmbeddedPlatform(self.broker_uri, store, run_dir,
                                              credentials=self.broker.platform_credentials if self.broker else None)
            self._platform.start()
            self.callback(self._platform.stop)

    def ready(self) -> None:
        """Wait until the platform answers (the embedded one: and has the scenario's tenant); sets :attr:`api`."""
        from gridloop.sdk import PlatformClient, PlatformError  # httpx: imported once the platform is booting

        p = self._scenario.platform
        if self._platform is None:
            self.api = PlatformClient(p.api_url, p.api_key)
            self.callback(self.api.close)
            self.api.wait_healthy()
            if (owner := self.api.metrics().tenant) != p.tenant:  # else every reading is refused as unknown
                raise RunRefused(f"the API key belongs to tenant {owner} but the run would publish as tenant "
                                 f"{p.tenant}: pass --tenant {owner} (or {p.tenant}'s key)")
            return
        admin = PlatformClient(self._platform.wait_url())
        try:
            try:
                admin.wait_healthy(60)
            except PlatformError:
                raise PlatformError("embedded platform did not start:\n" + self._platform.log_tail()) from None
            key = admin.create_tenant(p.tenant, self._platform.admin_key)
        finally:
            admin.close()
        self.api = PlatformClient(self._platform.url, key)
        self.callback(self.api.close)

    def stop_platform(self) -> None:
        """Ask the embedded platform to stop now (it folds its rollups and closes its store while the caller
        goes on); leaving the context waits for it."""
        if self._platform is not None:
            self._platform.terminate()


def _given_credentials(s: Scenario) -> tuple[str, str] | None:
    """The tenant's broker account: the scenario's, else the one a parent run hands its partitions."""
    p = s.platform
    if p.mqtt_username:
        return p.mqtt_username, p.mqtt_password or ""
    user = os.environ.get("GRIDLOOP_MQTT_USERNAME")
    return (user, os.environ.get("GRIDLOOP_MQTT_PASSWORD", "")) if user else None


@dataclass
class StartedRun:
    """A run whose scenario is resolved, whose directory exists and whose broker and platform are starting."""

    s: Scenario
    run_dir: Path
    services: RunServices
    wall0: float = field(default_factory=time.monotonic)  # the run's wall time counts from its services' start


def start_run(scenario: Scenario, options: RunOptions) -> StartedRun:
    """Resolve the scenario with the run's options, write it to the run directory and start its services."""
    s = resolve(scenario, options)
    run_dir = run_dir_of(s, options)
    wall0 = time.monotonic()
    services = RunServices(s, run_dir, ready=False)
    try:
        (run_dir / "scenario.json").write_text(s.redacted_json())  # once the directory is this run's
    except BaseException:
        services.close()
        raise
    return StartedRun(s, run_dir, services, wall0)
