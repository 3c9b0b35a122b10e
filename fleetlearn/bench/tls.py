"""A throwaway TLS broker: a CA and certificates made with ``cryptography``, a password file
made with ``mosquitto_passwd``, and a mosquitto with a TLS listener (and, if asked, a plain one
beside it), for the security benchmark and the tests. Everything lives in one directory.

The secured deployment's own generator (``fleetlearn broker --secure``) may replace the
certificate part; this one only needs to be good enough for a loopback broker.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     pki = make_pki(Path(d))
...     sorted(p.name for p in Path(d).iterdir())
['ca.key', 'ca.pem', 'client.key', 'client.pem', 'server.key', 'server.pem']
"""

from __future__ import annotations

import datetime
import getpass
import ipaddress
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.address import BrokerAddress
from broker.mosquitto import BrokerError, find_mosquitto, free_port, holds_listener
from broker.processes import die_with_parent, stop_process


@dataclass(frozen=True)
class Pki:
    """Paths of a CA, a server certificate (localhost, 127.0.0.1, ::1) and a client one."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _write(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _issue(name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
           signer: ec.EllipticCurvePrivateKey, ca_key_id: x509.SubjectKeyIdentifier | None,
           extensions: list[x509.ExtensionType]) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(ski, critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                   ca_key_id or ski), critical=False))
    for ext in extensions:
        builder = builder.add_extension(ext, critical=isinstance(ext, x509.BasicConstraints))
    return builder.sign(signer, hashes.SHA256())


def make_pki(directory: Path, ca_name: str = "fleetlearn test CA") -> Pki:
    """A new CA, and a server and a client certificate it signed, as PEM files in
    ``directory``."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False,
                 key_agreement=False, encipher_only=False, decipher_only=False)
    ca = _issue(ca_name, ca_key, ca_subject, ca_key, None, [
        x509.BasicConstraints(ca=True, path_length=0),
        x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True, **usage)])
    ca_id = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    _write(directory / "ca", ca_key, ca)
    leaf_usage = x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                               **usage)
    names = x509.SubjectAlternativeName([
        x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1"))])
    for name, purpose, extra in (("server", ExtendedKeyUsageOID.SERVER_AUTH, [names]),
                                 ("client", ExtendedKeyUsageOID.CLIENT_AUTH, [])):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(name, key, ca_subject, ca_key, ca_id, [
            x509.BasicConstraints(ca=False, path_length=None), leaf_usage,
            x509.ExtendedKeyUsage([purpose]), *extra])
        _write(directory / name, key, cert)
    d = directory
    return Pki(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem",
               d / "client.key")


def password_file(path: Path, users: dict[str, str]) -> Path:
    """A mosquitto password file (hashed by ``mosquitto_passwd``) for ``users``."""
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    for i, (user, password) in enumerate(users.items()):
        subprocess.run([tool, "-b", *(["-c"] if i == 0 else []), str(path), user, password],
                       check=True, capture_output=True, timeout=30)
    return path


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
