"""Broker accounts that hold: Mosquitto's dynamic-security plugin, a role per tenant and one for the platform.

Neither the platform's nor the simulator's: the CLI, the platform and the embedded broker of a run all use it.

Mosquitto's plain ``acl_file`` checks reads only when a message is delivered, so any account may *subscribe* to
``#`` or join the platform's shared-subscription group and take a share of every tenant's telemetry (measured:
half of another tenant's readings lost). The dynamic-security plugin checks subscriptions too. The rights:

- a tenant account (its DIAs, simulator controller, SDK sessions) publishes only its own
  telemetry, events, responses and status, reads and subscribes only its own subtree — never commands, never
  ``$share``, ``#``, ``$SYS`` or another tenant's topics;
- a device account (``tenant.device``: a meter, gateway or DIA of its own) publishes only on its own topics and
  reads only its own commands and acknowledgements; a client certificate whose CN is the account name serves as
  its credential on a :meth:`MosquittoAuth.certificate_listener`;
- the platform account reads every tenant's topics (plain and shared subscriptions) and alone publishes commands
  and delivery acknowledgements;
- the admin account only talks to the plugin's control topic (to add tenants to a running broker).

The accounts live in the plugin's own JSON file (salted PBKDF2-SHA512, never clear passwords); a running broker
learns new ones through the control topic (:class:`DynsecControl`).
"""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import os
import secrets
import threading
import uuid
from pathlib import Path

from gridloop.contract import NAME, PREFIX, BrokerAddress, TopicKind
from gridloop.contract.bounds import MAX_PAYLOAD_BYTES
from gridloop.contract.topics import SHARED

PLATFORM_USER = "gridloop-platform"
ADMIN_USER = "gridloop-admin"
PLATFORM_ROLE, ADMIN_ROLE = "platform", "admin"
ITERATIONS = 101  # mosquitto_passwd's and the plugin's default
CONTROL = "$CONTROL/dynamic-security/v1"
MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024  # a payload at the contract's limit plus topic and properties
DEVICE_PUBLISHES = (TopicKind.TELEMETRY, TopicKind.EVENTS, TopicKind.RESPONSES, TopicKind.STATUS)
PLUGIN_PATHS = ("/usr/lib/*/mosquitto_dynamic_security.so", "/usr/lib/mosquitto_dynamic_security.so",
                "/usr/local/lib/mosquitto_dynamic_security.so", "/usr/local/lib/*/mosquitto_dynamic_security.so")


def find_dynsec_plugin() -> str | None:
    """Mosquitto's dynamic-security plugin (shipped with Debian's mosquitto package), or None."""
    for pattern in PLUGIN_PATHS:
        if found := sorted(glob.glob(pattern)):
            return found[0]
    return None


def _acl(kind: str, topic: str) -> dict:
    return {"acltype": kind, "topic": topic, "priority": 0, "allow": True}


def tenant_role(tenant: str) -> dict:
    """What a tenant's account may do: its own subtree, devices' directions only."""
    own = f"{PREFIX}/{tenant}"
    acls = [_acl("publishClientSend", f"{own}/{kind}/+") for kind in DEVICE_PUBLISHES]
    acls += [_acl("publishClientReceive", f"{own}/#"), _acl("subscribePattern", f"{own}/#")]
    return {"rolename": f"tenant-{tenant}", "acls": acls}


def device_user(tenant: str, device: str) -> str:
    """A device's (or gateway's, DIA's) account name; '.' is in no tenant or device name, so none collide."""
    return f"{tenant}.{device}"


def device_role(tenant: str, device: str) -> dict:
    """What one device's account may do: publish its own telemetry, events, responses and status; read only its own
    commands and delivery acknowledgements."""
    own = f"{PREFIX}/{tenant}"
    acls = [_acl("publishClientSend", f"{own}/{kind}/{device}") for kind in DEVICE_PUBLISHES]
    for kind in (TopicKind.COMMANDS, TopicKind.ACKS):
        acls += [_acl("publishClientReceive", f"{own}/{kind}/{device}"),
                 _acl("subscribePattern", f"{own}/{kind}/{device}")]
    return {"rolename": f"device-{device_user(tenant, device)}", "acls": acls}


def _check_names(*names: str) -> None:
    for name in names:
        if not NAME.match(name):
            raise ValueError(f"name {name!r} does not match {NAME.pattern}")


def platform_role() -> dict:
    acls = [_acl("publishClientSend", f"{PREFIX}/+/{TopicKind.COMMANDS}/+"),
            _acl("publishClientSend", f"{PREFIX}/+/{TopicKind.ACKS}/+"),
            _acl("publishClientReceive", f"{PREFIX}/#"), _acl("subscribePattern", f"{PREFIX}/#"),
            _acl("subscribePattern", f"{SHARED}/+/{PREFIX}/#")]
    return {"rolename": PLATFORM_ROLE, "acls": acls}


def admin_role() -> dict:
    acls = [_acl(kind, f"{CONTROL}/#") for kind in ("publishClientReceive", "subscribePattern")]
    return {"rolename": ADMIN_ROLE, "acls": [_acl("publishClientSend", CONTROL), *acls]}


def password_fields(password: str) -> dict:
    """The plugin's stored form of a password: salted PBKDF2-SHA512."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return {"password": base64.b64encode(digest).decode(), "salt": base64.b64encode(salt).decode(),
            "iterations": ITERATIONS}


def platform_client_suffix(credentials: tuple[str, str] | None) -> str:
    """A stable secret part of the platform's client ids, so that no tenant can take them over (and kick the
    platform off): derived from the platform's password, unknown to tenants; empty without credentials."""
    if credentials is None:
        return ""
    return "-" + hashlib.sha256(f"{credentials[0]}:{credentials[1]}".encode()).hexdigest()[:12]


class MosquittoAuth:
    """The broker's accounts, kept in the dynamic-security plugin's JSON file in ``directory``."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._config = (json.loads(self.config_file.read_text()) if self.config_file.exists() else
                        {"defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False,
                                              "subscribe": False, "unsubscribe": True},
                         "clients": [], "groups": [], "roles": [platform_role(), admin_role()]})

    @property
    def config_file(self) -> Path:
        return self.dir / "dynamic-security.json"

    def add_tenant(self, tenant: str) -> tuple[str, str]:
        """Create (or renew the password of) the tenant's account; returns (username, password), shown once."""
        if not NAME.match(tenant):
            raise ValueError(f"tenant name {tenant!r} does not match {NAME.pattern}")
        role = tenant_role(tenant)
        self._config["roles"] = [r for r in self._config["roles"] if r["rolename"] != role["rolename"]] + [role]
        return self._add(tenant, role["rolename"])

    def add_device(self, tenant: str, device: str) -> tuple[str, str]:
        """Create (or renew) one device's account (``tenant.device``): its own topics only. (username, password)."""
        _check_names(tenant, device)
        role = device_role(tenant, device)
        self._config["roles"] = [r for r in self._config["roles"] if r["rolename"] != role["rolename"]] + [role]
        return self._add(device_user(tenant, device), role["rolename"])

    def add_platform(self) -> tuple[str, str]:
        """The platform's own account (ingest, command dispatch): every tenant's topics, commands."""
        return self._add(PLATFORM_USER, PLATFORM_ROLE)

    def add_admin(self) -> tuple[str, str]:
        """An account for the plugin's control topic (adding tenants to a running broker)."""
        return self._add(ADMIN_USER, ADMIN_ROLE)

    def _add(self, user: str, role: str) -> tuple[str, str]:
        password = secrets.token_urlsafe(18)
        client = {"username": user, "roles": [{"rolename": role}], **password_fields(password)}
        self._config["clients"] = [c for c in self._config["clients"] if c["username"] != user] + [client]
        self._write()
        return user, password

    def _write(self) -> None:
        tmp = self.config_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._config, indent=1))
        _readable_by_broker(tmp)
        tmp.replace(self.config_file)

    def mosquitto_conf(self, port: int, host: str = "127.0.0.1") -> str:
        """A listener that enforces these accounts (the plugin reads the file at start and keeps it current)."""
        plugin = find_dynsec_plugin()
        if plugin is None:
            raise RuntimeError("Mosquitto's dynamic-security plugin is not installed (Debian: package mosquitto)")
        return (f"listener {port} {host}\nallow_anonymous false\nmax_packet_size {MAX_PACKET_BYTES}\n"
                f"plugin {plugin}\nplugin_opt_config_file {self.config_file}\n")

    @staticmethod
    def certificate_listener(port: int, ca: str, cert: str, key: str, host: str = "127.0.0.1") -> str:
        """A TLS listener where a client certificate is the credential: its CN is the account (``tenant.device``,
        a tenant or the platform's), whose role applies; append to :meth:`mosquitto_conf`."""
        return (f"listener {port} {host}\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
                "require_certificate true\nuse_identity_as_username true\n")


def _readable_by_broker(path: Path) -> None:
    """Mosquitto started as root drops to the 'mosquitto' user, which must read (and the plugin rewrite) the file."""
    try:
        import pwd

        user = pwd.getpwnam("mosquitto")
        os.chown(path, user.pw_uid, user.pw_gid)
        os.chown(path.parent, user.pw_uid, user.pw_gid)
        os.chmod(path, 0o600)
    except (KeyError, PermissionError):
        os.chmod(path, 0o600)


class DynsecControl:
    """Adds tenants to a running broker through the plugin's control topic, as its admin account."""

    def __init__(self, broker: BrokerAddress, admin: tuple[str, str], timeout_s: float = 10.0) -> None:
        self.broker, self.admin, self.timeout_s = broker, admin, timeout_s

    def add_tenant(self, tenant: str) -> tuple[str, str]:
        """Create the tenant's role and account on the running broker; returns (username, password)."""
        if not NAME.match(tenant):
            raise ValueError(f"tenant name {tenant!r} does not match {NAME.pattern}")
        password = secrets.token_urlsafe(18)
        role = tenant_role(tenant)
        self.run([{"command": "createRole", **role},
                  {"command": "createClient", "username": tenant, "password": password,
                   "roles": [{"rolename": role["rolename"]}]}])
        return tenant, password

    def add_device(self, tenant: str, device: str) -> tuple[str, str]:
        """Create one device's role and account on the running broker; returns (username, password)."""
        _check_names(tenant, device)
        password = secrets.token_urlsafe(18)
        role = device_role(tenant, device)
        self.run([{"command": "createRole", **role},
                  {"command": "createClient", "username": device_user(tenant, device), "password": password,
                   "roles": [{"rolename": role["rolename"]}]}])
        return device_user(tenant, device), password

    def run(self, commands: list[dict]) -> list[dict]:
        """Send commands, wait for the plugin's answers; RuntimeError naming any that failed."""
        from gridloop.mqtt_client import connect

        done, answers = threading.Event(), []

        def on_message(client, userdata, msg) -> None:
            answers.extend(json.loads(msg.payload).get("responses", []))
            done.set()

        client = connect(self.broker, f"gridloop-admin-{uuid.uuid4().hex[:8]}", username=self.admin[0],
                         password=self.admin[1], subscriptions=[(f"{CONTROL}/response", 1)], on_message=on_message)
        try:
            client.publish(CONTROL, json.dumps({"commands": commands}).encode(), qos=1).wait_for_publish(5)
            if not done.wait(self.timeout_s):
                raise RuntimeError("the broker's dynamic-security plugin did not answer")
        finally:
            client.disconnect()
            client.loop_stop()
        if failed := [a for a in answers if a.get("error")]:
            raise RuntimeError("; ".join(f"{a.get('command')}: {a['error']}" for a in failed))
        return answers


def mqtt_environment(credentials: tuple[str, str] | None) -> dict[str, str]:
    """A child's broker account, by environment (never on its command line)."""
    return {"GRIDLOOP_MQTT_USERNAME": credentials[0], "GRIDLOOP_MQTT_PASSWORD": credentials[1]} if credentials else {}


def child_environment(credentials: tuple[str, str] | None, **extra: str) -> dict[str, str]:
    """This process's environment for a child, with ``extra`` and its broker account. The password given here must
    win: an inherited $GRIDLOOP_MQTT_PASSWORD_FILE, which a child reads first, is dropped when one is given."""
    env = {**os.environ, **extra}
    if credentials:
        env.pop("GRIDLOOP_MQTT_PASSWORD_FILE", None)
        env.update(mqtt_environment(credentials))
    return env
