"""Ed25519 signatures on models and updates, as a trailer that keeps the JSON readable.

A signed payload is the encoded message (a compact JSON object, as the codecs write it) with
two members added at its end: ``"kid"`` (the signer's key id: the first 16 hex digits of the
SHA-256 of its raw public key) and ``"sig"`` (base64url, no padding, of the Ed25519 signature).
The signature covers the WHOLE encoded body, byte for byte (version, time and all), prefixed by
the message's purpose (``model`` or ``update``) so that no signature is good for another kind
of message. The body is recovered exactly by cutting the trailer off: no re-serialisation, so
no canonical form to agree on. An unsigned deployment reads a signed payload as it is (the
decoders ignore members they do not know); a verifier decodes the body it checked.

>>> key = PrivateKey.generate()
>>> signed = sign(b'{"version":3,"ts":1.5}', key, "model")
>>> signed.startswith(b'{"version":3,"ts":1.5,"kid":"' + key.kid.encode() + b'","sig":"')
True
>>> trust = TrustSet([TrustedKey(key.kid, "aggregator", "aggregator", key.public)])
>>> body, signer = verify(signed, trust, "model")
>>> body, signer.name
(b'{"version":3,"ts":1.5}', 'aggregator')
>>> verify(signed.replace(b'"version":3', b'"version":4'), trust, "model")
Traceback (most recent call last):
...
broker.signing.SignatureRefused: bad_signature: the signature of key ... does not match the ...
>>> verify(signed, trust, "update")  # a model's signature is no update's
Traceback (most recent call last):
...
broker.signing.SignatureRefused: bad_signature: the signature of key ... does not match the ...
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, replace

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

#: What a signature is for: its purpose is signed with the body.
PURPOSES = ("model", "update", "personal")
#: Why a message is refused by its signature (counted under these names).
REASONS = ("unsigned", "bad_signature", "unknown_key", "revoked_key", "wrong_signer")

_TRAILER = re.compile(rb'"kid":"([0-9a-f]{16})","sig":"([A-Za-z0-9_-]{86})"\}')
#: The trailer's length: ``"kid":"`` 16 hex ``","sig":"`` 86 base64url ``"}``.
_TRAILER_BYTES = 7 + 16 + 9 + 86 + 2


class SignatureRefused(Exception):
    """A payload that does not carry a good signature from a key trusted for it."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def key_id(public: bytes) -> str:
    """The short fingerprint of a raw 32-byte public key.

    >>> key_id(bytes(32))
    '66687aadf862bd77'
    """
    return hashlib.sha256(public).hexdigest()[:16]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PrivateKey:
    """A node's Ed25519 private key (PEM, PKCS#8, unencrypted in a 0600 file)."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public = key.public_key().public_bytes(serialization.Encoding.Raw,
                                                    serialization.PublicFormat.Raw)
        self.kid = key_id(self.public)

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> PrivateKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("not an Ed25519 private key")
        return cls(key)

    def to_pem(self) -> bytes:
        return self._key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())

    def signature(self, data: bytes) -> bytes:
        return self._key.sign(data)


@dataclass(frozen=True)
class TrustedKey:
    """One public key a receiver accepts: its id, the node it belongs to, that node's role."""

    kid: str
    name: str
    role: str
    public: bytes
    revoked: bool = False

    def __post_init__(self) -> None:
        if len(self.public) != 32:
            raise ValueError(f"key {self.kid}: a public key has 32 bytes, not {len(self.public)}")
        if key_id(self.public) != self.kid:
            raise ValueError(f"key {self.kid}: the id is not the fingerprint of its public key")

    def revoke(self) -> TrustedKey:
        return replace(self, revoked=True)


class TrustSet:
    """The keys a node accepts, by id (revoked ones are kept, to say why they are refused)."""

    def __init__(self, keys: list[TrustedKey] | tuple[TrustedKey, ...] = ()) -> None:
        self.keys = {k.kid: k for k in keys}
        self._public = {k.kid: Ed25519PublicKey.from_public_bytes(k.public) for k in keys}

    def __len__(self) -> int:
        return len(self.keys)

    def public(self, kid: str) -> Ed25519PublicKey:
        return self._public[kid]


def _signed_bytes(purpose: str, body: bytes) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}")
    return b"fleetlearn " + purpose.encode() + b"\0" + body


def sign(body: bytes, key: PrivateKey, purpose: str) -> bytes:
    """``body`` (a JSON object's bytes) with the key's id and signature added at its end."""
    if not (body.startswith(b"{") and body.endswith(b"}")):
        raise ValueError("only a JSON object can be signed")
    sig = b64(key.signature(_signed_bytes(purpose, body)))
    comma = b"" if body == b"{}" else b","
    return body[:-1] + comma + f'"kid":"{key.kid}","sig":"{sig}"}}'.encode()


def split(payload: bytes) -> tuple[bytes, str, bytes] | None:
    """(body, key id, signature) of a signed payload; None if it carries no trailer.

    >>> split(b'{"a":1}') is None
    True
    """
    at = len(payload) - _TRAILER_BYTES  # a fixed length: no scan of the payload
    found = _TRAILER.fullmatch(payload, at) if at > 0 else None
    before = payload[at - 1:at]
    if found is None or not (before == b"," or (before == b"{" and at == 1)):
        return None
    body = payload[:at if at == 1 else at - 1] + b"}"
    return body, found.group(1).decode(), unb64(found.group(2).decode())


def verify(payload: bytes, trust: TrustSet, purpose: str) -> tuple[bytes, TrustedKey]:
    """The signed body and the key that signed it; :class:`SignatureRefused` if the payload is
    unsigned, its key unknown or revoked, or its signature wrong. Which keys may sign what is
    the caller's to judge (the returned key's name and role)."""
    parts = split(payload)
    if parts is None:
        raise SignatureRefused("unsigned", f"the {purpose} carries no signature")
    body, kid, sig = parts
    known = trust.keys.get(kid)
    if known is None:
        raise SignatureRefused("unknown_key", f"key {kid} is not in the trust file")
    if known.revoked:
        raise SignatureRefused("revoked_key", f"key {kid} ({known.name}) is revoked")
    try:
        trust.public(kid).verify(sig, _signed_bytes(purpose, body))
    except InvalidSignature:
        raise SignatureRefused("bad_signature", f"the signature of key {kid} does not "
                               f"match the {purpose}") from None
    return body, known
