"""`fleetlearn keys`: make a node's signing key, and keep the trust file of public keys the
nodes accept (:mod:`broker.keyring`); plus the ``--signing-key``/``--trust`` options of the node
commands and the keyring they build.

Rotation: ``keys init`` a new key and add it to the trust file (nodes re-read it within a
second), give the node the new key (swap its key file, or restart it with the new one), then
``keys revoke`` the old id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from broker.keyring import (
    MODEL_SIGNERS,
    ROLES,
    Keyring,
    KeyringError,
    TrustedKey,
    read_trust,
    write_private,
    write_trust,
)
from broker.signing import PrivateKey, b64, key_id, unb64
from broker.topics import TopicError, check_id
from fleetlearn.commands.common import UsageProblem

SigningKeyOpt = Annotated[Path | None, typer.Option(
    "--signing-key", envvar="FLEETLEARN_SIGNING_KEY",
    help="This node's Ed25519 private key (fleetlearn keys init): the aggregator signs every "
         "model with it, a gateway its updates (a predictor signs nothing).")]
TrustOpt = Annotated[Path | None, typer.Option(
    "--trust", envvar="FLEETLEARN_TRUST",
    help="Trust file of the public keys accepted; given, signatures are required: unsigned, "
         "forged or replayed models and updates are refused. Re-read when it changes.")]
#: The signing options of every node command (their defaults: None, no signing).
SIGNING_OPTIONS = frozenset({"key", "trust"})

app = typer.Typer(help="Signing keys and the trust file of public keys.", no_args_is_help=True)
TrustFileOpt = Annotated[Path, typer.Option("--trust", help="The trust file.")]
NodeOpt = Annotated[str, typer.Option("--node", help="The node the key belongs to (an "
                                      "aggregator's id, or a gateway's: its learner id).")]
RoleOpt = Annotated[str, typer.Option("--role", help="'aggregator' (signs models), "
                                      "'gateway' (signs its own updates) or 'site_aggregator' "
                                      "(node site-S: signs its site models and site updates).")]


def keyring(key: Path | None, trust: Path | None, node: str, role: str | None
            ) -> Keyring | None:
    """The node's keyring (None: no signing); one line for a key or file that will not do."""
    if key is None and trust is None:
        return None
    if trust is not None and key is None and role is not None:
        raise UsageProblem(f"--trust needs --signing-key: a {role} signs what it sends")
    try:
        ring = Keyring(key if role is not None else None, trust)
    except KeyringError as exc:
        raise UsageProblem(str(exc)) from None
    mine = ring.trust.keys.get(ring.key.kid) if ring.key is not None else None
    if mine is not None and (mine.name, mine.role) != (node, role):
        raise UsageProblem(f"key {mine.kid} of {key} is {mine.role} {mine.name}'s in {trust}, "
                           f"not {role} {node}'s: give each node its own key")
    if role in MODEL_SIGNERS and ring.required and (mine is None or mine.revoked):
        raise UsageProblem(f"key {ring.key.kid} of {key} is not trusted as {role} {node} "
                           f"in {trust}: fleetlearn keys add --trust {trust} --node {node} "
                           f"--role {role} {b64(ring.key.public)}")
    return ring


def _name(node: str, role: str) -> tuple[str, str]:
    try:
        check_id(node, "node")
    except TopicError as exc:
        raise UsageProblem(str(exc)) from None
    if role not in ROLES:
        raise UsageProblem(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    return node, role


def _load(trust: Path, missing_ok: bool = False) -> list[TrustedKey]:
    if missing_ok and not trust.exists():
        return []
    try:
        return read_trust(trust)
    except KeyringError as exc:
        raise UsageProblem(str(exc)) from None


def _add(trust: Path, entry: TrustedKey) -> None:
    keys = _load(trust, missing_ok=True)
    if any(k.kid == entry.kid for k in keys):
        raise UsageProblem(f"key {entry.kid} is already in {trust}")
    write_trust(trust, [*keys, entry])


def _line(k: TrustedKey) -> str:
    return f"{k.kid}  {k.role:<10} {k.name:<16} {b64(k.public)}{'  revoked' if k.revoked else ''}"


@app.command()
def init(
    node: NodeOpt,
    role: RoleOpt,
    key: Annotated[Path, typer.Option("--key", help="Private key file to write (mode 0600).")],
    trust: Annotated[Path | None, typer.Option("--trust", help="Also add the public key to "
                                               "this trust file (made if missing).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing key file.")] = False,
) -> None:
    """Make a node's private key; print its public key (and add it to --trust)."""
    node, role = _name(node, role)
    if key.exists() and not force:
        raise UsageProblem(f"{key} exists (--force to overwrite it)")
    private = PrivateKey.generate()
    entry = TrustedKey(private.kid, node, role, private.public)
    if trust is not None:
        _add(trust, entry)
    try:
        write_private(key, private.to_pem())
    except OSError as exc:
        raise UsageProblem(f"cannot write {key}: {exc.strerror}") from None
    print(_line(entry))


# A public key is urlsafe base64, which begins with "-" one time in 64: such a key is the
# argument, not an unknown option (add has no short options for it to collide with).
@app.command(context_settings={"ignore_unknown_options": True})
def add(
    public: Annotated[str, typer.Argument(help="The public key (base64, as init prints it).")],
    trust: TrustFileOpt,
    node: NodeOpt,
    role: RoleOpt,
) -> None:
    """Trust a public key as a node's (the trust file is made if missing)."""
    node, role = _name(node, role)
    try:
        raw = unb64(public.strip())
        entry = TrustedKey(key_id(raw), node, role, raw)
    except ValueError as exc:
        raise UsageProblem(f"not a public key: {exc}") from None
    _add(trust, entry)
    print(_line(entry))


@app.command()
def revoke(
    kid: Annotated[str, typer.Argument(help="The key id to revoke.")],
    trust: TrustFileOpt,
) -> None:
    """Mark a key revoked: what it signs is refused from now on (it stays listed)."""
    keys = _load(trust)
    if not any(k.kid == kid for k in keys):
        raise UsageProblem(f"no key {kid} in {trust}")
    keys = [k.revoke() if k.kid == kid else k for k in keys]
    write_trust(trust, keys)
    print(next(_line(k) for k in keys if k.kid == kid))


@app.command("list")
def list_keys(trust: TrustFileOpt) -> None:
    """The keys of a trust file: id, role, node, public key, and whether revoked."""
    for k in _load(trust):
        print(_line(k))
