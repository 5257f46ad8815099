"""The deployment files agree with the code: command lines parse, ports, images, topics and partitions match."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from gridloop.cli import _parser
from gridloop.contract import BrokerAddress, shared
from gridloop.scenario.loader import parse_scenario

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"gridloop:{VERSION}"


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def _k8s_docs() -> list[dict]:
    return [d for f in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def _k8s_containers() -> list[tuple[dict, dict]]:
    out = []
    for doc in _k8s_docs():
        spec = doc.get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
        out += [(doc, c) for c in pod.get("containers", [])]
    return out


def _gridloop_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every gridloop command line in compose and k8s."""
    cmds = []
    for name, svc in _compose()["services"].items():
        if svc["image"].startswith("gridloop"):
            cmd = svc["command"]
            cmds.append((f"compose:{name}", shlex.split(cmd) if isinstance(cmd, str) else list(cmd)))
    for doc, c in _k8s_containers():
        if c["image"].startswith("gridloop"):
            argv = [a.replace("$(JOB_COMPLETION_INDEX)", "0") for a in c.get("command", [])[1:] + c["args"]]
            cmds.append((f"k8s:{doc['metadata']['name']}", argv))
    return cmds


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_every_gridloop_command_parses_with_the_cli_parser() -> None:
    cmds = _gridloop_commands()
    assert {argv[0] for _, argv in cmds} >= {"run", "platform", "tenant"}
    for where, argv in cmds:
        try:
            _parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"{where}: `gridloop {' '.join(argv)}` does not parse with gridloop.cli._parser()")


def test_images_are_the_package_version() -> None:
    images = {svc["image"] for svc in _compose()["services"].values() if svc["image"].startswith("gridloop")}
    images |= {c["image"] for _, c in _k8s_containers() if c["image"].startswith("gridloop")}
    assert images == {IMAGE}
    assert f"-t {IMAGE}" in (DEPLOY / "Dockerfile").read_text()


def _conf_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def _store_uris(where: str, store: str) -> str:
    """The store URI a command gets: compose spells it out (with the password from the environment), k8s takes it
    from the gridloop-mongo secret."""
    if where.startswith("k8s"):
        assert store == "$(GRIDLOOP_STORE_URI)", where
        return "mongodb://gridloop:x@mongo:27017/gridloop?authSource=admin"
    return store


def test_ports_and_hosts_match() -> None:
    conf = _conf_lines((DEPLOY / "mosquitto.conf").read_text())
    mqtt_port, tls_port, cert_port = (int(ln.split()[1]) for ln in conf if ln.startswith("listener"))
    services = {d["metadata"]["name"]: d for d in _k8s_docs() if d["kind"] == "Service"}
    compose = _compose()["services"]
    assert [p["port"] for p in services["mosquitto"]["spec"]["ports"]] == [mqtt_port, tls_port, cert_port]
    assert compose["mosquitto"]["ports"] == [f"{p}:{p}" for p in (tls_port, cert_port)]  # outside: TLS only
    for where, argv in _gridloop_commands():
        if (broker := _option(argv, "--broker")) is not None:
            addr = BrokerAddress.parse(broker)
            assert (addr.host, addr.port) == ("mosquitto", mqtt_port), where
        if (store := _option(argv, "--store")) is not None:
            uri = _store_uris(where, store)
            m = re.match(r"^mongodb://gridloop:[^@]+@([^:/]+):(\d+)/(\w+)\?authSource=admin$", uri)
            assert m, f"{where}: {store}"
            assert m.group(1) == "mongo"
            assert int(m.group(2)) == services["mongo"]["spec"]["ports"][0]["port"]
            assert "ports" not in compose["mongo"]  # the store is reached on the compose network only
        if argv[:2] == ["platform", "serve"]:
            port = int(_option(argv, "--port") or 0)
            assert services["platform"]["spec"]["ports"][0]["targetPort"] == port
            assert compose["platform"]["ports"] == [f"{port}:{port}"]
            assert _option(argv, "--host") == "0.0.0.0"
    fleet = yaml.safe_load((DEPLOY / "scenarios" / "fleet.yaml").read_text())
    assert fleet["platform"]["api_url"] == f"http://platform:{services['platform']['spec']['ports'][0]['port']}"


def test_shipped_deployments_are_closed_by_default() -> None:
    """No anonymous broker, accounts from the dynamic-security file the setup step writes, a TLS listener, an
    authenticated store, no default admin key, the platform on its own broker account."""
    for name, text in (("deploy/mosquitto.conf", (DEPLOY / "mosquitto.conf").read_text()),
                       ("deploy/mosquitto-edge-bridge.conf", (DEPLOY / "mosquitto-edge-bridge.conf").read_text())):
        lines = _conf_lines(text)
        assert "allow_anonymous true" not in lines, name
    lines = _conf_lines((DEPLOY / "mosquitto.conf").read_text())
    assert "allow_anonymous false" in lines
    assert "plugin_opt_config_file /mosquitto/auth/dynamic-security.json" in lines
    assert {"cafile /mosquitto/certs/ca.crt", "certfile /mosquitto/certs/server.crt"} <= set(lines)
    compose = _compose()
    assert "mqtt-auth:/mosquitto/auth" in compose["services"]["mosquitto"]["volumes"]
    assert compose["services"]["broker-accounts"]["command"] == ["broker", "accounts", "/auth"]
    assert "mqtt-auth:/auth" in compose["services"]["broker-accounts"]["volumes"]
    text = (DEPLOY / "docker-compose.yml").read_text() + "".join(
        f.read_text() for f in sorted((DEPLOY / "k8s").glob("*.yaml")))
    assert "change-me" not in text and "optional: true" not in text
    assert compose["services"]["mongo"]["environment"]["MONGO_INITDB_ROOT_PASSWORD"].startswith("${MONGO_PASSWORD:?")
    for where, argv in _gridloop_commands():
        if argv[:2] == ["platform", "serve"]:
            assert _option(argv, "--mqtt-username") == "gridloop-platform", where
        if argv[:2] == ["tenant", "create"]:
            assert _option(argv, "--broker") is not None, where  # the running broker learns the account

def test_ingest_group_is_the_contracts_shared_subscription() -> None:
    serves = [argv for _, argv in _gridloop_commands() if argv[:2] == ["platform", "serve"]]
    assert serves
    for argv in serves:
        group = _option(argv, "--ingest-group") or "ingest"
        assert shared("telemetry", group) == "$share/ingest/gridloop/v1/+/telemetry/+"  # contracts.md §1
        assert int(_option(argv, "--ingest-workers") or 1) >= 1


def test_platform_replicas_have_their_own_instance_names() -> None:
    """Several replicas, each with its own MQTT client ids (instance name), the same group, broker and store."""
    from gridloop.platform.service import check_instance

    compose = _compose()["services"]
    serving = {name: svc for name, svc in compose.items()
               if svc["image"].startswith("gridloop") and list(svc["command"][:2]) == ["platform", "serve"]}
    assert len(serving) >= 2
    assert len({tuple(svc["command"]) for svc in serving.values()}) == 1  # one group, broker, store, port
    assert all("--instance" not in svc["command"] for svc in serving.values())
    names = [svc["environment"]["GRIDLOOP_INSTANCE"] for svc in serving.values()]
    assert len(set(names)) == len(names) and all(check_instance(n) for n in names)
    for name, svc in serving.items():  # every replica answers to `platform` (the simulators' api_url)
        assert name == "platform" or "platform" in svc["networks"]["default"]["aliases"], name
        assert name == "platform" or "ports" not in svc, f"{name}: only one replica takes the host's port"
        assert svc["environment"]["GRIDLOOP_ADMIN_KEY"] == compose["platform"]["environment"]["GRIDLOOP_ADMIN_KEY"]

    docs = _k8s_docs()
    workloads = [d for d, c in _k8s_containers() if c.get("args", [])[:2] == ["platform", "serve"]]
    assert len(workloads) == 1
    sts = workloads[0]
    assert sts["kind"] == "StatefulSet" and sts["spec"]["replicas"] >= 2  # stable pod names, several replicas
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert "--instance" not in container["args"]  # the same for every pod: the name comes from the pod
    env = {e["name"]: e for e in container["env"]}
    assert env["GRIDLOOP_INSTANCE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert check_instance(f"{sts['metadata']['name']}-{sts['spec']['replicas'] - 1}")  # pod names are valid
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    labels = sts["spec"]["template"]["metadata"]["labels"]
    governing = services[sts["spec"]["serviceName"]]
    assert governing["spec"]["clusterIP"] == "None" and governing["spec"]["selector"] == labels
    assert services["platform"]["spec"]["selector"] == labels  # the API Service spreads over every replica


def test_k8s_copies_match_the_files() -> None:
    maps = {d["metadata"]["name"]: d["data"] for d in _k8s_docs() if d["kind"] == "ConfigMap"}
    assert _conf_lines(maps["mosquitto-conf"]["mosquitto.conf"]) == _conf_lines(
        (DEPLOY / "mosquitto.conf").read_text())
    fleet_file = yaml.safe_load((DEPLOY / "scenarios" / "fleet.yaml").read_text())
    assert yaml.safe_load(maps["fleet-scenario"]["fleet.yaml"]) == fleet_file
    parse_scenario(fleet_file, "deploy/scenarios/fleet.yaml")  # valid against the scenario model


def test_partitions_cover_all_workers() -> None:
    sims = [argv for where, argv in _gridloop_commands() if where.startswith("compose:") and argv[0] == "run"]
    parts = sorted(tuple(int(x) for x in _option(argv, "--partition").split("/")) for argv in sims)
    n = len(sims)
    assert parts == [(k, n) for k in range(n)]
    job = next(d for d in _k8s_docs() if d["kind"] == "Job" and d["metadata"]["name"] == "simulators")
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    k, total = _option(args, "--partition").split("/")
    assert k == "$(JOB_COMPLETION_INDEX)"
    assert job["spec"]["completionMode"] == "Indexed"
    assert int(total) == job["spec"]["completions"] == job["spec"]["parallelism"]
    # a partition runs whole substations: the fleet must have at least as many as there are workers
    fleet = yaml.safe_load((DEPLOY / "scenarios" / "fleet.yaml").read_text())
    assert fleet["grid"]["substations"] >= max(n, int(total))


def test_edge_bridge_topics_follow_the_contract() -> None:
    """deploy/mosquitto-edge-bridge.conf bridges every contract topic kind once, the right way, at QoS 1, and its
    patterns match exactly the topics gridloop.contract builds (tests/study/test_bridge.py runs the file)."""
    from paho.mqtt.client import topic_matches_sub

    from gridloop.contract import KINDS, PREFIX, parse_topic, topic

    conf = _conf_lines((DEPLOY / "mosquitto-edge-bridge.conf").read_text())
    bridged = {}
    for line in conf:
        if line.startswith("topic "):
            pattern, direction, qos = line.split()[1:]  # no prefix remapping: the same topics on edge and core
            kind = pattern.split("/")[3]
            assert kind not in bridged, f"{kind} bridged twice"
            bridged[kind] = (pattern, direction, int(qos))
    assert set(bridged) == set(KINDS)
    for kind, (pattern, direction, qos) in bridged.items():
        assert pattern == f"{PREFIX}/+/{kind}/+", pattern
        assert (direction, qos) == ("in" if kind in ("commands", "acks") else "out", 1), kind
        published = topic("tenant-1", kind, "dia_7")
        assert parse_topic(published) == ("tenant-1", kind, "dia_7")
        assert topic_matches_sub(pattern, published)
        assert not any(topic_matches_sub(pattern, topic("t", other, "d")) for other in KINDS if other != kind)
    # what the core's ingest subscribes to is what the edge sends out
    for kind in ("telemetry", "events"):
        assert shared(kind, "ingest").removeprefix("$share/ingest/") == bridged[kind][0]
    settings = {ln.split()[0]: ln.split(None, 1)[1] for ln in conf if not ln.startswith("topic ")}
    core_port = int(next(ln.split()[1] for ln in _conf_lines((DEPLOY / "mosquitto.conf").read_text())
                         if ln.startswith("listener")))
    assert settings["address"] == f"core:{core_port}"  # the placeholder the test substitutes
    assert settings["cleansession"] == "false" and settings["bridge_protocol_version"] == "mqttv311"  # v5: session lost
    assert settings["max_queued_messages"] == "0"  # the bridge's backlog is not capped at Mosquitto's 1000
