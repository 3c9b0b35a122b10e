"""`up --secure`: the files of a secured deployment, and how each node connects and signs.

One directory (``--secure-dir``) holds the broker's files (:mod:`broker.secure`: CA, server
certificate, a password per node and device, the password file, the ACL) and, under ``keys/``,
one Ed25519 key per signing node (the aggregator, each gateway) and the trust file of their
public keys. Made once and kept: a re-run reuses the CA, the passwords and the keys, adding only
what is missing (e.g. a key for a gateway more).

Every node logs in as itself (its id is its user name), its password in its environment (see
:func:`fleetlearn.deploy.processes.connection`); the aggregator and each gateway sign with their
own key, and every receiver (gateways, predictor, aggregator) requires signatures it can verify
with the shared trust file.

>>> s = SecuredDeployment(SecureDir(Path("/s")))
>>> s.signing("gw-1")
['--signing-key', '/s/keys/gw-1.key', '--trust', '/s/keys/trust.toml']
>>> s.signing("predictor-s0"), s.signing("fleet")
(['--trust', '/s/keys/trust.toml'], [])
>>> s.signing("site-s0")[1]
'/s/keys/site-s0.key'

"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from broker.acl import gateway_ids
from broker.address import BrokerAddress
from broker.bridge import site_aggregator_id, update_signer
from broker.keyring import read_private, read_trust, write_private, write_trust
from broker.mosquitto import BrokerError
from broker.secure import SecureDir, SecureSetupError, generate
from broker.signing import PrivateKey, TrustedKey
from broker.topics import Topics


@dataclass(frozen=True)
class SecuredDeployment:
    """Where a secured deployment's files are (see the module's doc)."""

    files: SecureDir

    @property
    def keys_dir(self) -> Path:
        return self.files.path / "keys"

    @property
    def trust(self) -> Path:
        return self.keys_dir / "trust.toml"

    def key(self, node: str) -> Path:
        return self.keys_dir / f"{node}.key"

    def signing(self, node: str) -> list[str]:
        """The signing options of node ``node``: its own key and the trust file for the
        aggregator, site aggregators and gateways, the trust file for a predictor, none for a
        fleet."""
        if node == "aggregator" or node.startswith(("gw-", "site-")):
            return ["--signing-key", str(self.key(node)), "--trust", str(self.trust)]
        return ["--trust", str(self.trust)] if node.startswith("predictor") else []

    def login(self, address: BrokerAddress, user: str) -> BrokerAddress:
        """``address`` (the secured broker's) as ``user`` logs in: TLS with the CA, its own
        user name and password."""
        return dataclasses.replace(address, tls=True, ca=str(self.files.ca_cert),
                                   username=user, password=self.files.password(user))


def secure(path: Path, topics: Topics, gateways: int, devices: Iterable[str],
           sites: tuple[str, ...] = ()) -> SecuredDeployment:
    """Make (or complete) the secured deployment's files under ``path``: the broker's
    (:func:`broker.secure.generate`; with ``sites``, the bridged deployment's logins) and a
    signing key per signing node (with ``sites``: each site aggregator's too), trusted."""
    d = SecuredDeployment(generate(path, topics, gateways=gateways, devices=tuple(devices),
                                   sites=sites))
    d.keys_dir.mkdir(mode=0o700, exist_ok=True)
    trusted = read_trust(d.trust) if d.trust.exists() else []
    known, before = {k.kid for k in trusted}, len(trusted)
    for node in ["aggregator", *gateway_ids(gateways), *(site_aggregator_id(s) for s in sites)]:
        if d.key(node).exists():
            key = read_private(d.key(node))
        else:
            key = PrivateKey.generate()
            write_private(d.key(node), key.to_pem())
        if key.kid not in known:
            role = "aggregator" if node == "aggregator" else update_signer(node)
            trusted.append(TrustedKey(key.kid, node, role, key.public))
            known.add(key.kid)
    if len(trusted) > before or not d.trust.exists():  # untouched when nothing is new
        write_trust(d.trust, trusted)
    return d


def secure_files(secure_dir: Path | None, log_dir: Path, topics: Topics, gateways: int,
                 devices: Iterable[str], sites: tuple[str, ...] = ()) -> SecuredDeployment:
    """`up --secure`'s files under ``secure_dir`` (None: ``secure`` in the log dir); one line
    (:class:`~broker.mosquitto.BrokerError`) when they cannot be made or used."""
    path = secure_dir or log_dir / "secure"
    try:
        return secure(path, topics, gateways, devices, sites)
    except (SecureSetupError, ValueError, OSError) as exc:  # KeyringError is a ValueError
        raise BrokerError(f"--secure-dir {path}: {exc}") from None


def login(secured: SecuredDeployment | None, address: BrokerAddress, user: str
          ) -> BrokerAddress:
    """How ``user`` connects: as itself on a secured deployment, else as ``up`` does."""
    return address if secured is None else secured.login(address, user)


def signing(secured: SecuredDeployment | None, node: str) -> list[str]:
    return [] if secured is None else secured.signing(node)
