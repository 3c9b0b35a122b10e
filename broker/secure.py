"""The files of a secured broker, made once and kept: a CA, the server certificate, one password
per user (node or device), the password file and the ACL (``broker/acl.py``).

Layout of the directory (keys, passwords and the password file readable by the owner only)::

    ca.crt ca.key            the CA; nodes verify the broker with ca.crt (--tls-ca)
    server.crt server.key    the broker's TLS listener (SANs: 127.0.0.1, localhost, --host)
    credentials.json         {"users": {name: {"role": ..., "password": ...}}}
    passwd                   mosquitto_passwd's hashes of those passwords
    acl                      who may read and write what
    clients/NAME.crt .key    with client certificates: one per user, for mutual TLS

Running :func:`generate` again keeps the CA, the server certificate (while it names every host
and is valid 30 days more) and every existing password; it adds what is missing and writes the
ACL and password file anew. Nothing is revoked by running it again.

>>> d = SecureDir(Path("/s"))
>>> print("\\n".join(d.broker_lines(require_certificate=True)))  # doctest: +NORMALIZE_WHITESPACE
cafile /s/ca.crt
certfile /s/server.crt
keyfile /s/server.key
tls_version tlsv1.2
require_certificate true
allow_anonymous false
password_file /s/passwd
acl_file /s/acl
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from broker import pki
from broker.acl import render_acl, roster
from broker.topics import Topics


class SecureSetupError(RuntimeError):
    """The secured broker's files could not be made (e.g. mosquitto_passwd is missing)."""


@dataclass(frozen=True)
class SecureDir:
    """Where a secured broker's files are (see the module's doc for the layout)."""

    path: Path

    ca_cert = property(lambda self: self.path / "ca.crt")
    ca_key = property(lambda self: self.path / "ca.key")
    server_cert = property(lambda self: self.path / "server.crt")
    server_key = property(lambda self: self.path / "server.key")
    credentials_file = property(lambda self: self.path / "credentials.json")
    password_file = property(lambda self: self.path / "passwd")
    acl_file = property(lambda self: self.path / "acl")

    def client_cert(self, user: str) -> Path:
        return self.path / "clients" / f"{user}.crt"

    def client_key(self, user: str) -> Path:
        return self.path / "clients" / f"{user}.key"

    def users(self) -> dict[str, dict[str, str]]:
        """name -> {"role", "password"}; empty before the first :func:`generate`."""
        if not self.credentials_file.exists():
            return {}
        return dict(json.loads(self.credentials_file.read_text())["users"])

    def password(self, user: str) -> str:
        return self.users()[user]["password"]

    def broker_lines(self, require_certificate: bool = False) -> list[str]:
        """mosquitto.conf lines that secure the listener above them: TLS 1.2 or newer with
        this CA and server certificate (and, with ``require_certificate``, a client
        certificate the CA signed), passwords, the ACL, no anonymous client."""
        return [f"cafile {self.ca_cert}", f"certfile {self.server_cert}",
                f"keyfile {self.server_key}", "tls_version tlsv1.2",
                f"require_certificate {'true' if require_certificate else 'false'}",
                "allow_anonymous false", f"password_file {self.password_file}",
                f"acl_file {self.acl_file}"]


def find_mosquitto_passwd() -> str:
    for candidate in (shutil.which("mosquitto_passwd"), "/usr/bin/mosquitto_passwd"):
        if candidate and Path(candidate).exists():
            return candidate
    raise SecureSetupError("mosquitto_passwd is missing: run `sudo apt-get install mosquitto`")


def generate(path: Path, topics: Topics, *, gateways: int, devices: tuple[str, ...] = (),
             hosts: tuple[str, ...] = (), client_certs: bool = False,
             sites: tuple[str, ...] = ()) -> SecureDir:
    """Make (or complete) the secured broker's files under ``path`` for these users (and a
    bridge user per site in ``sites``)."""
    d = SecureDir(Path(path))
    if not d.path.exists():  # an existing directory keeps its mode: it may be shared
        d.path.mkdir(mode=0o700, parents=True)
    ca = _ca(d)
    if not (d.server_cert.exists() and d.server_key.exists()
            and pki.covers(pki.load(d.server_key, d.server_cert).cert, hosts)):
        pki.save(pki.issue(ca, "fleetlearn broker", hosts=hosts), d.server_key, d.server_cert)
    users = _credentials(d, roster(gateways, devices, sites))
    if client_certs:
        (d.path / "clients").mkdir(mode=0o700, exist_ok=True)
        for user in users:
            if not d.client_cert(user).exists():
                pki.save(pki.issue(ca, user, client=True), d.client_key(user), d.client_cert(user))
    d.acl_file.write_text(render_acl(topics, {u: v["role"] for u, v in users.items()}))
    _password_file(d, users)
    return d


def _ca(d: SecureDir) -> pki.KeyPair:
    if d.ca_cert.exists() and d.ca_key.exists():
        return pki.load(d.ca_key, d.ca_cert)
    ca = pki.make_ca()
    pki.save(ca, d.ca_key, d.ca_cert)
    return ca


def _credentials(d: SecureDir, wanted: dict[str, str]) -> dict[str, dict[str, str]]:
    """Keep every existing user and password; add the wanted ones that are missing."""
    users = d.users()
    for name, role in wanted.items():
        if name in users and users[name]["role"] != role:
            raise SecureSetupError(f"{d.credentials_file}: {name} is a {users[name]['role']}, "
                                   f"not a {role}; use another directory or remove it")
        users.setdefault(name, {"role": role, "password": secrets.token_urlsafe(24)})
    text = json.dumps({"users": dict(sorted(users.items()))}, indent=1) + "\n"
    pki.write_private(d.credentials_file, text.encode())
    return users


def _password_file(d: SecureDir, users: dict[str, dict[str, str]]) -> None:
    hash_passwords(d.password_file, {u: v["password"] for u, v in users.items()})


def hash_passwords(path: Path, passwords: dict[str, str]) -> Path:
    """Write Mosquitto's password file for ``passwords`` (user -> password) to ``path``, hashed
    by ``mosquitto_passwd -U`` (one process for every user)."""
    plain = path.with_name(path.name + ".plain")
    pki.write_private(plain, "".join(f"{u}:{pw}\n" for u, pw in passwords.items()).encode())
    try:
        done = subprocess.run([find_mosquitto_passwd(), "-U", str(plain)], capture_output=True,
                              text=True, timeout=60)
        if done.returncode != 0:
            raise SecureSetupError(f"mosquitto_passwd failed: {done.stderr.strip()}")
        plain.replace(path)
    finally:
        plain.unlink(missing_ok=True)
    return path
