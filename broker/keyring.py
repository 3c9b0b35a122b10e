"""A node's keys on disk: its private key file and its trust file, re-read when they change.

The trust file is TOML, one ``[[key]]`` table a key (``fleetlearn keys`` writes it)::

    [[key]]
    id = "66687aadf862bd77"   # key id: fingerprint of the public key
    name = "aggregator"       # the node: an aggregator's id, or a gateway's (= learner) id
    role = "aggregator"       # 'aggregator' (may sign models), 'gateway' (its own updates) or
                              # 'site_aggregator' (a site's models and its site updates)
    public = "..."            # raw Ed25519 public key, base64url
    revoked = false

:class:`Keyring` holds what a node signs with and what it accepts. With a trust file,
signatures are required; with a key file alone, the node signs but accepts unsigned messages
(a fleet turning signing on: every node signs first, then every node requires). It re-reads
either file when its identity (inode, size, mtime) changes, checked by :meth:`Keyring.refresh`
on the node's timer: a rotation adds the new key to the trust file, swaps the key file, then
revokes the old key, and no node restarts. A file that cannot be read or parsed on a re-read is
logged and the keys already held stay in use.

>>> key = PrivateKey.generate()
>>> text = dump_trust([TrustedKey(key.kid, "gw-0", "gateway", key.public)])
>>> [(k.name, k.role, k.revoked) for k in parse_trust(text)]
[('gw-0', 'gateway', False)]
>>> parse_trust('[[key]]\\nid = "x"\\n')
Traceback (most recent call last):
...
broker.keyring.KeyringError: trust file: key 1: missing 'name'
"""

from __future__ import annotations

import logging
import os
import stat
import tomllib
from pathlib import Path

from broker.pki import write_atomic, write_private
from broker.signing import (
    PrivateKey,
    SignatureRefused,
    TrustedKey,
    TrustSet,
    b64,
    sign,
    unb64,
    verify,
)

log = logging.getLogger(__name__)

ROLES = ("aggregator", "gateway", "site_aggregator")
#: Who may sign a model a gateway, predictor or monitor adopts: the (core's) aggregator, or a
#: site's aggregator re-broadcasting on its site broker (``fleetlearn aggregator --site``).
MODEL_SIGNERS = ("aggregator", "site_aggregator")


class KeyringError(ValueError):
    """A key file or trust file that cannot be used (one line)."""


def parse_trust(text: str, source: str = "trust file") -> list[TrustedKey]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise KeyringError(f"{source} is not valid TOML: {exc}") from None
    keys = []
    for i, entry in enumerate(data.get("key", []), 1):
        for field in ("id", "name", "role", "public"):
            if not isinstance(entry.get(field), str):
                raise KeyringError(f"{source}: key {i}: missing '{field}'")
        try:
            keys.append(TrustedKey(entry["id"], entry["name"], entry["role"],
                                   unb64(entry["public"]), bool(entry.get("revoked", False))))
        except ValueError as exc:
            raise KeyringError(f"{source}: key {i}: {exc}") from None
    return keys


def dump_trust(keys: list[TrustedKey]) -> str:
    lines = ["# fleetlearn trust file: the public keys this node accepts (fleetlearn keys)"]
    for k in keys:
        lines += ["", "[[key]]", f'id = "{k.kid}"', f'name = "{k.name}"', f'role = "{k.role}"',
                  f'public = "{b64(k.public)}"', f"revoked = {'true' if k.revoked else 'false'}"]
    return "\n".join(lines) + "\n"


def read_trust(path: Path) -> list[TrustedKey]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeyringError(f"cannot read the trust file {path}: {exc.strerror}") from None
    return parse_trust(text, str(path))


def write_trust(path: Path, keys: list[TrustedKey]) -> None:
    """Write atomically (a node re-reading it sees the old file or the new one)."""
    write_atomic(path, dump_trust(keys).encode(), 0o644)


def read_private(path: Path) -> PrivateKey:
    try:
        if os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyringError(f"the key file {path} is readable by others: chmod 600 it")
        pem = path.read_bytes()
    except OSError as exc:
        raise KeyringError(f"cannot read the key file {path}: {exc.strerror}") from None
    try:
        return PrivateKey.from_pem(pem)
    except (ValueError, TypeError) as exc:
        raise KeyringError(f"{path} is not an Ed25519 private key: {exc}") from None


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class Keyring:
    """What one node signs with (``key_file``) and accepts (``trust_file``)."""

    def __init__(self, key_file: Path | None = None, trust_file: Path | None = None) -> None:
        self.key_file, self.trust_file = key_file, trust_file
        self.key = read_private(key_file) if key_file else None
        self.trust = TrustSet(read_trust(trust_file) if trust_file else [])
        self._seen = {p: _identity(p) for p in (key_file, trust_file) if p}
        self.reloads = 0

    @property
    def required(self) -> bool:
        """Incoming models and updates must be signed (a trust file was given)."""
        return self.trust_file is not None

    def sign(self, body: bytes, purpose: str) -> bytes:
        """``body`` signed, or as it is if this node has no key."""
        return body if self.key is None else sign(body, self.key, purpose)

    def check(self, payload: bytes, purpose: str, role: str | tuple[str, ...],
              name: str | None = None) -> tuple[bytes, TrustedKey | None]:
        """The body to decode, and who signed it; :class:`SignatureRefused` if signatures are
        required and this one is missing, bad, or from a key not trusted as ``role`` (or one
        of the roles, a tuple) and, if given, as node ``name``. Without a trust file: the
        payload as it is."""
        if not self.required:
            return payload, None
        body, signer = verify(payload, self.trust, purpose)
        roles = (role,) if isinstance(role, str) else role
        if signer.role not in roles or (name is not None and signer.name != name):
            wanted = " or ".join(roles) + (f" {name}" if name is not None else "")
            raise SignatureRefused("wrong_signer", f"key {signer.kid} is {signer.role} "
                                   f"{signer.name}'s; a {purpose} needs {wanted}'s")
        return body, signer

    def refresh(self) -> bool:
        """Re-read a file that changed since it was read; True if the keys changed."""
        changed = False
        for path in list(self._seen):
            now = _identity(path)
            if now is None or now == self._seen[path]:
                continue
            self._seen[path] = now
            try:
                if path == self.key_file:
                    self.key = read_private(path)
                else:
                    self.trust = TrustSet(read_trust(path))
            except KeyringError as exc:
                log.error("keys not re-read, the ones held stay in use: %s", exc)
                continue
            changed = True
            self.reloads += 1
            log.info("re-read %s", path, extra={"path": str(path)})
        if changed and self.key is not None and self.required:
            mine = self.trust.keys.get(self.key.kid)
            if mine is None or mine.revoked:
                log.warning("this node's key %s is %s in %s: what it signs will be refused",
                            self.key.kid, "revoked" if mine else "not", self.trust_file)
        return changed


__all__ = [
    "MODEL_SIGNERS",
    "ROLES",
    "Keyring",
    "KeyringError",
    "SignatureRefused",
    "TrustedKey",
    "dump_trust",
    "parse_trust",
    "read_private",
    "read_trust",
    "write_private",
    "write_trust",
]
