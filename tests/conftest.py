"""Shared fixtures: a real Mosquitto broker, the platform in-process, FerretDB when provisioned.

`scripts/test.sh` starts the services and exports their URIs; run alone, the tests start a
Mosquitto child process themselves. With GRIDLOOP_REQUIRE_SERVICES=1 (CI) a missing service
fails instead of skipping.
"""

from __future__ import annotations

import os
import secrets

import pytest

from gridloop.broker import EmbeddedBroker, find_mosquitto

REQUIRED = os.environ.get("GRIDLOOP_REQUIRE_SERVICES") in ("1", "true")


def _missing(what: str) -> None:
    if REQUIRED:
        pytest.fail(f"{what} is required (GRIDLOOP_REQUIRE_SERVICES=1) but not available")
    pytest.skip(f"{what} not available; run scripts/test.sh to provision it")


@pytest.fixture(scope="session")
def mosquitto_binary() -> str:
    """The Mosquitto executable, for tests that start their own broker processes."""
    path = find_mosquitto()
    if path is None:
        _missing("Mosquitto")
    return str(path)


@pytest.fixture(scope="session")
def chromium_binary() -> str:
    """Debian's Chromium (scripts/test.sh installs it) and Playwright to drive it, for the live view's browser test."""
    import shutil

    path = os.environ.get("GRIDLOOP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _missing("Chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("Playwright for Python")
    return path


def _worker_index() -> int:
    """0 without pytest-xdist; else this worker's number (gw0 → 0, gw1 → 1, …)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


@pytest.fixture(scope="session")
def broker_uri() -> str:
    """The broker of this test process: each xdist worker gets its own from ``GRIDLOOP_TEST_BROKERS`` (a comma list
    that scripts/test.sh starts), because platforms of two tests on one broker would see each other's tenants."""
    brokers = [b for b in os.environ.get("GRIDLOOP_TEST_BROKERS", "").split(",") if b]
    uri = brokers[_worker_index() % len(brokers)] if brokers else os.environ.get("GRIDLOOP_TEST_BROKER")
    if uri:
        yield uri
        return
    if find_mosquitto() is None:
        _missing("Mosquitto")
    broker = EmbeddedBroker().start()
    yield broker.uri
    broker.stop()


@pytest.fixture(scope="session")
def mongo_uri() -> str:
    uri = os.environ.get("GRIDLOOP_TEST_MONGODB")
    if not uri:
        _missing("FerretDB (MongoDB-wire server)")
    return uri


@pytest.fixture
def platform(broker_uri, tmp_path):
    """A running platform (ingest, dispatch, REST) on a fresh SQLite store."""
    from gridloop.platform.service import PlatformService

    admin = "adm_" + secrets.token_hex(8)
    # each test's platform is its own shared-subscription group on the session's broker
    service = PlatformService(broker_uri, f"sqlite:///{tmp_path / 'store.db'}", port=0, admin_key=admin,
                              ingest_group=f"ingest-{secrets.token_hex(4)}")
    service.admin_key = admin
    with service:
        yield service
