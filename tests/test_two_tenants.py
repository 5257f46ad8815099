"""Two tenants on one platform: the quick start's meters (m00001 …) run twice at once, under two tenants, through
one Mosquitto that enforces their accounts, and each sees only its own — checked from the other side: what each
tenant's key reads back over REST and what each tenant's grid did."""

from __future__ import annotations

import fcntl
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from gridloop.broker import find_mosquitto, free_port, wait_port
from gridloop.broker_accounts import MosquittoAuth
from gridloop.cli import main
from gridloop.contract import BrokerAddress, Quantity
from gridloop.contract.rest import Readings, TenantCredentials
from gridloop.contract.summary import RunSummary
from gridloop.engine.run import RunOptions, run_scenario
from gridloop.engine.run_services import RUN_LOCK, RunRefused
from gridloop.platform.service import PlatformService
from gridloop.scenario.loader import load_scenario
from gridloop.tenant_access import read_credentials, write_credentials

QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml"
V1 = Quantity.VOLTAGE_L1.value
# tenant: (seed, the switch its scenario opens, when); different seeds: every reading of m00001 differs between them
TENANTS = {"alpha": (42, "sw1", "10min"), "beta": (7, "sw3", "20min")}


@pytest.fixture
def shared_platform(tmp_path, monkeypatch):
    """One Mosquitto enforcing accounts (dynamic-security plugin) and one platform on it, under its own account."""
    if find_mosquitto() is None:
        pytest.fail("Mosquitto is required for the two-tenant test")
    auth_dir = Path(tempfile.mkdtemp(prefix="gridloop-auth-"))  # the broker's user must read it: not pytest's tmp
    auth_dir.chmod(0o755)
    auth = MosquittoAuth(auth_dir)
    platform_account, admin_account = auth.add_platform(), auth.add_admin()
    port = free_port()
    (tmp_path / "mosquitto.conf").write_text(auth.mosquitto_conf(port) + "persistence false\n")
    broker = subprocess.Popen([find_mosquitto(), "-c", str(tmp_path / "mosquitto.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_port("127.0.0.1", port, 10)
    store = f"sqlite:///{tmp_path / 'platform.db'}"
    service = PlatformService(str(BrokerAddress("127.0.0.1", port)), store, port=0,
                              admin_key="adm_" + secrets.token_hex(8), credentials=platform_account)
    monkeypatch.setenv("GRIDLOOP_BROKER_ADMIN", ":".join(admin_account))
    try:
        with service:
            yield service, f"mqtt://127.0.0.1:{port}", store
    finally:
        broker.terminate()
        broker.wait(5)
        shutil.rmtree(auth_dir)


def _scenario(tmp_path: Path, tenant: str) -> Path:
    """The quick start, 40 minutes long, opening its tenant's switch (meter ids, grid and tenant-free file kept)."""
    _, switch, at = TENANTS[tenant]
    s = yaml.safe_load(QUICKSTART.read_text())
    s["clock"]["duration"] = "40min"
    s["events"] = [{"at": at, "command": "switch.open", "device": switch}]
    s["outputs"] = {"progress": False, "plots": False}
    path = tmp_path / f"{tenant}.yaml"
    path.write_text(yaml.safe_dump(s))
    return path


def _runs_at_once(tmp_path: Path, broker: str, api_url: str, store: str) -> dict[str, Path]:
    """`gridloop tenant create --out` for each tenant, then both `gridloop run`s at the same time."""
    procs, dirs = {}, {}
    for tenant in TENANTS:
        assert main(["tenant", "create", tenant, "--store", store, "--broker", broker,
                     "--out", str(tmp_path / f"{tenant}.json")]) == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRIDLOOP_API_KEY", "GRIDLOOP_MQTT"))}
    for tenant, (seed, _, _) in TENANTS.items():
        dirs[tenant] = tmp_path / f"run-{tenant}"
        procs[tenant] = subprocess.Popen(
            [sys.executable, "-m", "gridloop", "run", str(_scenario(tmp_path, tenant)), "--seed", str(seed),
             "--credentials", str(tmp_path / f"{tenant}.json"), "--broker", broker, "--api-url", api_url,
             "--out", str(dirs[tenant])], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for tenant, proc in procs.items():
        out = proc.communicate(timeout=180)[0].decode()
        assert proc.returncode == 0, f"{tenant}: {out}"
    return dirs


def _api(url: str, tmp_path: Path, tenant: str) -> httpx.Client:
    key = TenantCredentials.model_validate_json((tmp_path / f"{tenant}.json").read_bytes()).api_key
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _stored(api: httpx.Client, device: str) -> dict[tuple[int, int], dict[str, float]]:
    r = api.get(f"/api/v1/devices/{device}/readings", params={"start": "2026-01-14", "end": "2026-01-16"})
    r.raise_for_status()
    page = Readings.model_validate_json(r.content)
    assert page.next_start is None
    return {(x.ts, x.seq): x.q for x in page.readings}


def _sampled(run_dir: Path, device: str) -> dict[tuple[int, int], dict[str, float]]:
    df = pd.read_parquet(run_dir / "meter_readings.parquet")
    rows = df[df.dev == device].drop(columns="dev").to_dict("records")
    return {(int(r.pop("ts")), int(r.pop("seq"))): {q: v for q, v in r.items() if not math.isnan(v)} for r in rows}


def _values(readings: dict[tuple[int, int], dict[str, float]]) -> set[tuple]:
    return {tuple(sorted(q.items())) for q in readings.values()}


def _dead_meters(run_dir: Path) -> set[str]:
    """The meters that read 0 V: those behind an opened switch."""
    df = pd.read_parquet(run_dir / "meter_readings.parquet", columns=["dev", V1])
    return set(df[df[V1] == 0.0].dev)


def test_two_tenants_run_the_quickstart_at_once_on_one_platform(shared_platform, tmp_path, capsys):
    service, broker, store = shared_platform
    t0 = time.monotonic()
    dirs = _runs_at_once(tmp_path, broker, service.url, store)
    wall = time.monotonic() - t0
    api = {t: _api(service.url, tmp_path, t) for t in TENANTS}
    for tenant, run_dir in dirs.items():
        m = RunSummary.read(run_dir).messages
        assert m.readings_stored == m.readings_sampled > 0 and m.readings_lost == 0 and m.rejected == 0, tenant
        assert RunSummary.read(run_dir).commands.executed == 1  # its own command only, not the other's
    # each tenant's m00001 holds exactly what its own run sampled, value for value, and none of the other's
    stored = {t: _stored(api[t], "m00001") for t in TENANTS}
    sampled = {t: _sampled(dirs[t], "m00001") for t in TENANTS}
    for tenant, other in (("alpha", "beta"), ("beta", "alpha")):
        assert stored[tenant] == sampled[tenant] and len(stored[tenant]) == 8
        assert not _values(stored[tenant]) & _values(sampled[other])  # whatever their timestamps
    # each tenant's command opened its own switch in its own grid only
    dead = {t: _dead_meters(dirs[t]) for t in TENANTS}
    assert dead["alpha"] and dead["beta"] and not dead["alpha"] & dead["beta"]
    for tenant, other in (("alpha", "beta"), ("beta", "alpha")):
        own = _stored(api[tenant], sorted(dead[tenant])[0])
        assert any(q.get(V1) == 0.0 for q in own.values())  # de-energised, as stored on the platform
        for meter in sorted(dead[other])[:3]:  # the other's de-energised meters are live in this grid
            got = _stored(api[tenant], meter)
            assert got and all(q[V1] > 0.0 for q in got.values() if V1 in q), (tenant, meter)
    # a tenant's key does not reach the other's command: 404, exactly as for an id that does not exist
    ids = {t: [c["id"] for c in yaml.safe_load((dirs[t] / "commands.json").read_text())] for t in TENANTS}
    for tenant, other in (("alpha", "beta"), ("beta", "alpha")):
        assert api[tenant].get(f"/api/v1/commands/{ids[tenant][0]}").status_code == 200
        assert api[tenant].get(f"/api/v1/commands/{ids[other][0]}").status_code == 404
        assert api[tenant].get(f"/api/v1/commands/{secrets.token_hex(16)}").status_code == 404
    print(f"two runs at once: {wall:.1f} s")
    # alpha's key cannot run as beta: refused before anything is provisioned or published
    before = api["beta"].get("/api/v1/metrics").json()
    assert main(["run", str(_scenario(tmp_path, "alpha")), "--credentials", str(tmp_path / "alpha.json"),
                 "--tenant", "beta", "--broker", broker, "--api-url", service.url, "--out", str(tmp_path / "x")]) == 2
    assert "belongs to tenant alpha" in capsys.readouterr().err
    assert api["beta"].get("/api/v1/metrics").json()["readings_stored"] == before["readings_stored"]


def test_a_run_directory_serves_one_run_at_a_time(tmp_path):
    """A second run in a directory still in use is refused before it writes anything there (it would share the
    first run's DIA outbox and resend its envelopes)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with (run_dir / RUN_LOCK).open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RunRefused, match="run still going on"):
            run_scenario(load_scenario(QUICKSTART), RunOptions(out=run_dir, until=300))
    assert sorted(p.name for p in run_dir.iterdir()) == [RUN_LOCK]


def test_a_credentials_file_others_may_read_is_refused(tmp_path, capsys):
    creds = TenantCredentials(tenant="alpha", api_key="glk_x", mqtt={"username": "alpha", "password": "p",
                                                                     "topic_prefix": "gridloop/v1/alpha/"})
    path = tmp_path / "alpha.json"
    write_credentials(path, creds)
    assert path.stat().st_mode & 0o777 == 0o600 and read_credentials(path) == creds
    path.chmod(0o644)
    assert main(["run", str(QUICKSTART), "--credentials", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "chmod 600" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_run_without_a_key_or_with_a_bad_broker_is_refused_in_one_line(platform, broker_uri, tmp_path, capsys,
                                                                         monkeypatch):
    """What a user mistypes is said in one line naming it (exit 2), never a traceback."""
    monkeypatch.delenv("GRIDLOOP_API_KEY", raising=False)
    assert main(["run", str(QUICKSTART), "--broker", broker_uri, "--api-url", platform.url,
                 "--out", str(tmp_path / "nokey")]) == 2
    err = capsys.readouterr().err
    assert f"the platform at {platform.url} refused the API key" in err and "401" in err and "Traceback" not in err
    assert main(["run", str(QUICKSTART), "--broker", "http://127.0.0.1:1883", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "broker URI must look like mqtt://host:port" in err and "Traceback" not in err
