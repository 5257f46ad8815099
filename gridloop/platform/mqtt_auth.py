"""Per-tenant MQTT credentials and ACLs for Mosquitto: a tenant publishes and subscribes only under its prefix.

Writes Mosquitto's ``password_file`` (PBKDF2-SHA512, the ``$7$`` format of mosquitto_passwd) and
``acl_file``. The platform itself gets one account that may use every tenant's topics.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import json
import os
import secrets
from pathlib import Path

from gridloop.contract import NAME, PREFIX

PLATFORM_USER = "gridloop-platform"
ITERATIONS = 101  # mosquitto_passwd's default


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """A password hash in Mosquitto's ``$7$`` format (PBKDF2-HMAC-SHA512)."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return f"$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _readable_by_broker(path: Path) -> None:
    """Mosquitto started as root drops to the 'mosquitto' user: let its group read, nobody else."""
    try:
        group = grp.getgrnam("mosquitto").gr_gid
        os.chown(path, -1, group)
        os.chmod(path, 0o640)
    except (KeyError, PermissionError):
        os.chmod(path, 0o644)  # no such group here: the files hold salted hashes only


class MosquittoAuth:
    """The password and ACL files of one broker, kept in a directory; rewritten whole on every change."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._accounts_path = self.dir / "accounts.json"  # user -> {"hash", "tenant"}; no clear passwords
        self._accounts: dict[str, dict] = (json.loads(self._accounts_path.read_text())
                                           if self._accounts_path.exists() else {})

    @property
    def password_file(self) -> Path:
        return self.dir / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.dir / "acl"

    def add_tenant(self, tenant: str) -> tuple[str, str]:
        """Create (or renew) the tenant's MQTT account; returns (username, password), shown once."""
        if not NAME.match(tenant):
            raise ValueError(f"tenant name {tenant!r} does not match {NAME.pattern}")
        return self._add(tenant, tenant)

    def add_platform(self) -> tuple[str, str]:
        """The platform's own account (ingest, dispatch): all tenants' topics."""
        return self._add(PLATFORM_USER, None)

    def _add(self, user: str, tenant: str | None) -> tuple[str, str]:
        password = secrets.token_urlsafe(18)
        self._accounts[user] = {"hash": mosquitto_hash(password), "tenant": tenant}
        self._write()
        return user, password

    def _write(self) -> None:
        passwd = "".join(f"{u}:{a['hash']}\n" for u, a in sorted(self._accounts.items()))
        acl = []
        for user, account in sorted(self._accounts.items()):
            scope = f"{PREFIX}/#" if account["tenant"] is None else f"{PREFIX}/{account['tenant']}/#"
            acl += [f"user {user}", f"topic readwrite {scope}", ""]
        for path, text in ((self.password_file, passwd), (self.acl_file, "\n".join(acl)),
                           (self._accounts_path, json.dumps(self._accounts, indent=1))):
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            _readable_by_broker(tmp)
            tmp.replace(path)

    def mosquitto_conf(self, port: int, host: str = "127.0.0.1") -> str:
        """A listener block that enforces these accounts."""
        return (f"listener {port} {host}\nallow_anonymous false\npassword_file {self.password_file}\n"
                f"acl_file {self.acl_file}\n")
