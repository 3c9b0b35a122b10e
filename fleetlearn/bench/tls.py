"""A throwaway TLS broker: a CA and certificates made with ``cryptography``, a password file
made with ``mosquitto_passwd``, and a mosquitto with a TLS listener (and, if asked, a plain one
beside it), for the security benchmark and the tests. Everything lives in one directory.

The certificates come from :mod:`broker.pki` and the password file from
:func:`broker.secure.hash_passwords`, as for ``fleetlearn broker --secure``; what is its own
here is a broker with a plain listener beside the TLS one, and short-lived files.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     pki = make_pki(Path(d))
...     sorted(p.name for p in Path(d).iterdir())
['ca.key', 'ca.pem', 'client.key', 'client.pem', 'server.key', 'server.pem']
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from broker import pki
from broker.address import BrokerAddress
from broker.mosquitto import BrokerError, find_mosquitto, free_port, holds_listener
from broker.processes import die_with_parent, stop_process
from broker.secure import hash_passwords


@dataclass(frozen=True)
class Pki:
    """Paths of a CA, a server certificate (localhost, 127.0.0.1, ::1) and a client one."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(directory: Path, ca_name: str = "fleetlearn test CA") -> Pki:
    """A new CA, and a server (localhost, 127.0.0.1, ::1) and a client certificate it signed,
    as PEM files in ``directory`` (made by :mod:`broker.pki`, as the secured broker's are)."""
    ca = pki.make_ca(ca_name, days=2)
    d = directory
    paths = Pki(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem",
                d / "client.key")
    pki.save(ca, d / "ca.key", paths.ca)
    pki.save(pki.issue(ca, "server", hosts=("::1",), days=2), paths.server_key,
             paths.server_cert)
    pki.save(pki.issue(ca, "client", client=True, days=2), paths.client_key, paths.client_cert)
    return paths


def password_file(path: Path, users: dict[str, str]) -> Path:
    """A mosquitto password file (hashed by ``mosquitto_passwd``) for ``users``."""
    return hash_passwords(path, users)


class TlsMosquitto:
    """A mosquitto this object started: a TLS listener (``tls_port``) and, with ``plain``, a
    plain one (``plain_port``); with ``users``, no anonymous client; with ``client_certs``,
    every TLS client shows a certificate the CA signed. Use as a context manager."""

    def __init__(self, users: dict[str, str] | None = None, plain: bool = False,
                 client_certs: bool = False, directory: Path | None = None) -> None:
        self.users, self.plain, self.client_certs = users or {}, plain, client_certs
        self._own_dir = directory is None
        self.dir = Path(directory or tempfile.mkdtemp(prefix="fleetlearn-tls-"))
        self.process: subprocess.Popen | None = None
        self.tls_port = self.plain_port = 0

    def config(self, pki: Pki) -> str:
        lines = [f"user {getpass.getuser()}", "persistence false",
                 f"log_dest file {self.dir}/mosquitto.log", "log_type error",
                 "log_type warning", "log_type notice", "max_inflight_messages 1000",
                 "max_queued_messages 200000", "set_tcp_nodelay true",
                 f"allow_anonymous {'false' if self.users else 'true'}"]
        if self.users:
            lines.append(f"password_file {password_file(self.dir / 'passwd', self.users)}")
        lines += [f"listener {self.tls_port} 127.0.0.1", f"cafile {pki.ca}",
                  f"certfile {pki.server_cert}", f"keyfile {pki.server_key}",
                  f"require_certificate {'true' if self.client_certs else 'false'}"]
        if self.plain:
            lines.append(f"listener {self.plain_port} 127.0.0.1")
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 10.0) -> TlsMosquitto:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pki = make_pki(self.dir)
        self.tls_port = free_port()
        self.plain_port = free_port() if self.plain else 0
        conf = self.dir / "mosquitto.conf"
        conf.write_text(self.config(self.pki))
        self.process = subprocess.Popen([find_mosquitto(), "-c", str(conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, preexec_fn=die_with_parent)
        ports = [p for p in (self.tls_port, self.plain_port) if p]
        deadline = time.monotonic() + timeout
        while not all(holds_listener(self.process.pid, p) for p in ports):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = self.dir / "mosquitto.log"
                raise BrokerError(f"the TLS mosquitto did not start (see {log})")
            time.sleep(0.02)
        return self

    def address(self, **login: str | None) -> BrokerAddress:
        """The TLS listener, verified with this broker's CA; ``login``: username, password,
        cert, key."""
        return BrokerAddress(port=self.tls_port, tls=True, ca=str(self.pki.ca), **login)

    def plain_address(self) -> BrokerAddress:
        return BrokerAddress(port=self.plain_port)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None:
            stop_process(proc, timeout=5.0, kill_timeout=5.0)

    def __enter__(self) -> TlsMosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
