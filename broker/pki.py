"""The certificates of a secured deployment: a CA, the broker's server certificate, and client
certificates for mutual TLS, made with ``cryptography`` (ECDSA P-256, SHA-256).

Keys are written with mode 0600, certificates 0644. Nothing here talks to a network.

>>> ca = make_ca("fleetlearn test CA")
>>> server = issue(ca, "broker", hosts=("broker.local",))
>>> verifies(server.cert, ca.cert), san_names(server.cert)
(True, ['127.0.0.1', 'broker.local', 'localhost'])
>>> client = issue(ca, "gw-0", client=True)
>>> verifies(client.cert, ca.cert), verifies(client.cert, make_ca("other").cert)
(True, False)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Days a CA and a leaf certificate are valid from the day they are made.
CA_DAYS = 3650
LEAF_DAYS = 825
#: Names every server certificate carries: the broker fleetlearn starts listens on loopback.
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class KeyPair:
    """A private key and its certificate."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fleetlearn"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: str, issuer: x509.Name, days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))  # a little clock skew
            .not_valid_after(now + dt.timedelta(days=days)))


def make_ca(common_name: str = "fleetlearn CA", days: int = CA_DAYS) -> KeyPair:
    """A new CA: key and self-signed certificate (may sign leaves, not other CAs)."""
    key = ec.generate_private_key(ec.SECP256R1())
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (_builder(common_name, _name(common_name), days)
            .public_key(key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return KeyPair(key, cert)


def issue(ca: KeyPair, common_name: str, *, hosts: tuple[str, ...] = (), client: bool = False,
          days: int = LEAF_DAYS) -> KeyPair:
    """A leaf certificate signed by ``ca``: a server's (SANs: loopback plus ``hosts``) or, with
    ``client``, a client's for mutual TLS (no SANs; the common name is the node's id)."""
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (_builder(common_name, ca.cert.subject, days)
               .public_key(key.public_key())
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.key.public_key()), critical=False))
    if not client:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in _hosts(hosts)]),
            critical=False)
    return KeyPair(key, builder.sign(ca.key, hashes.SHA256()))


def _hosts(hosts: tuple[str, ...]) -> list[str]:
    return sorted(set(LOOPBACK_NAMES) | set(hosts))


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def san_names(cert: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses a certificate is valid for, sorted."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return sorted([*san.get_values_for_type(x509.DNSName),
                   *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))])


def covers(cert: x509.Certificate, hosts: tuple[str, ...], min_days: float = 30) -> bool:
    """True when ``cert`` names every host (and loopback) and is valid ``min_days`` more."""
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return set(_hosts(hosts)) <= set(san_names(cert)) and left > dt.timedelta(days=min_days)


def verifies(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    """True when ``ca_cert`` signed ``cert`` and both are valid now (a one-level chain)."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    now = dt.datetime.now(dt.UTC)
    return all(c.not_valid_before_utc <= now <= c.not_valid_after_utc for c in (cert, ca_cert))


# ---------------------------------------------------------------------- files


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by its owner only (0600 from the first
    byte)."""
    write_atomic(path, data, 0o600)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode``: a reader sees the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save(pair: KeyPair, key_path: Path, cert_path: Path) -> None:
    """Write the key (0600, PEM, unencrypted: the broker reads it unattended) and the cert."""
    write_private(key_path, pair.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    cert_path.write_bytes(pair.cert.public_bytes(serialization.Encoding.PEM))
    cert_path.chmod(0o644)


def load(key_path: Path, cert_path: Path) -> KeyPair:
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path} is not an EC private key")
    return KeyPair(key, x509.load_pem_x509_certificate(cert_path.read_bytes()))
