"""Signatures on models and updates (broker/signing.py), the trust and key files and their
re-reading (broker/keyring.py), and `fleetlearn keys`."""

import os
import stat

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.bridge import update_signer
from broker.keyring import (
    MODEL_SIGNERS,
    Keyring,
    KeyringError,
    read_private,
    read_trust,
    write_private,
    write_trust,
)
from broker.messages import LinearParams, Model, Scaler
from broker.model_codec import decode_model, encode_model
from broker.signing import (
    PrivateKey,
    SignatureRefused,
    TrustedKey,
    TrustSet,
    b64,
    sign,
    split,
    verify,
)
from fleetlearn.cli import main

pytestmark = pytest.mark.timeout(60)

AGG, GW = PrivateKey.generate(), PrivateKey.generate()
MODEL = Model(7, 1234.5, 100, ("gw-0",), "y", LinearParams(("a", "b"), np.array([1.0, -2.0]),
                                                           0.5),
              Scaler(3, np.zeros(3), np.ones(3)))


def entry(key: PrivateKey, name: str, role: str, revoked: bool = False) -> TrustedKey:
    return TrustedKey(key.kid, name, role, key.public, revoked)


def refused(payload: bytes, trust: TrustSet, purpose: str = "model") -> str:
    with pytest.raises(SignatureRefused) as caught:
        verify(payload, trust, purpose)
    return caught.value.reason


def test_a_signed_model_verifies_and_decodes_as_it_was_and_plain_readers_read_it_too():
    signed = sign(encode_model(MODEL), AGG, "model")
    body, signer = verify(signed, TrustSet([entry(AGG, "aggregator", "aggregator")]), "model")
    assert body == encode_model(MODEL) and signer.kid == AGG.kid
    for payload in (body, signed):  # a plain deployment decodes the signed payload as it is
        back = decode_model(payload)
        assert (back.version, back.ts, back.params.weights.tolist()) == (7, 1234.5, [1.0, -2.0])


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_changed_byte_of_a_signed_model_is_refused(data):
    signed = sign(encode_model(MODEL), AGG, "model")
    at = data.draw(st.integers(0, len(signed) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != signed[at]))
    tampered = signed[:at] + bytes([new]) + signed[at + 1:]
    with pytest.raises(SignatureRefused):
        verify(tampered, TrustSet([entry(AGG, "aggregator", "aggregator")]), "model")


def test_unsigned_unknown_revoked_and_foreign_purpose_are_refused_by_reason():
    signed = sign(encode_model(MODEL), AGG, "model")
    trusted = TrustSet([entry(AGG, "aggregator", "aggregator")])
    assert refused(encode_model(MODEL), trusted) == "unsigned"
    assert refused(signed, TrustSet([entry(GW, "gw-0", "gateway")])) == "unknown_key"
    assert refused(signed, TrustSet([entry(AGG, "aggregator", "aggregator", True)])) == \
        "revoked_key"
    assert refused(signed, trusted, "update") == "bad_signature"
    # another key's signature under this key's id
    forged = sign(encode_model(MODEL), GW, "model").replace(GW.kid.encode(), AGG.kid.encode())
    assert refused(forged, trusted) == "bad_signature"


def test_the_trailer_is_only_found_at_the_end():
    signed = sign(b'{"a":1}', AGG, "update")
    assert split(signed)[0] == b'{"a":1}'
    assert split(signed + b" ") is None
    assert split(signed.replace(b',"kid"', b'"kid"')) is None  # not where a member can end
    assert split(sign(b"{}", AGG, "update"))[0] == b"{}"
    with pytest.raises(ValueError):
        sign(b"[1]", AGG, "update")


def test_a_trusted_key_must_be_its_own_fingerprint():
    with pytest.raises(ValueError, match="fingerprint"):
        TrustedKey(AGG.kid, "aggregator", "aggregator", GW.public)


def test_the_keyring_checks_role_and_name_and_passes_through_without_a_trust_file(tmp_path):
    trust = tmp_path / "trust.toml"
    write_trust(trust, [entry(AGG, "aggregator", "aggregator"), entry(GW, "gw-0", "gateway")])
    key = tmp_path / "agg.key"
    key.write_bytes(AGG.to_pem())
    key.chmod(0o600)
    ring = Keyring(key, trust)
    model = ring.sign(encode_model(MODEL), "model")
    assert ring.check(model, "model", "aggregator", "aggregator")[1].name == "aggregator"
    with pytest.raises(SignatureRefused, match="wrong_signer"):
        ring.check(model, "model", "aggregator", "agg-2")
    with pytest.raises(SignatureRefused, match="wrong_signer"):  # a gateway's key signs no model
        ring.check(sign(encode_model(MODEL), GW, "model"), "model", "aggregator")
    update = sign(b'{"learner":"gw-0"}', GW, "update")
    assert ring.check(update, "update", "gateway")[1].name == "gw-0"
    plain = Keyring()
    assert plain.check(b'{"x":1}', "model", "aggregator") == (b'{"x":1}', None)
    assert plain.sign(b'{"x":1}', "model") == b'{"x":1}'


def test_a_site_aggregators_key_signs_site_models_and_its_site_updates_only(tmp_path):
    """Hierarchy: models from an aggregator or a site aggregator key (MODEL_SIGNERS); an update
    of learner site-S needs a site_aggregator key (update_signer), a gateway's needs its own."""
    site = PrivateKey.generate()
    trust = tmp_path / "trust.toml"
    write_trust(trust, [entry(AGG, "aggregator", "aggregator"), entry(GW, "site-s0", "gateway"),
                        entry(site, "site-s0", "site_aggregator")])
    ring = Keyring(None, trust)
    model = sign(encode_model(MODEL), site, "model")
    assert ring.check(model, "model", MODEL_SIGNERS)[1].role == "site_aggregator"
    with pytest.raises(SignatureRefused, match="needs aggregator's"):  # not as a global model
        ring.check(model, "model", "aggregator")
    with pytest.raises(SignatureRefused, match="aggregator or site_aggregator"):
        ring.check(sign(encode_model(MODEL), GW, "model"), "model", MODEL_SIGNERS)
    assert (update_signer("site-s0"), update_signer("gw-0")) == ("site_aggregator", "gateway")


def test_a_site_aggregator_must_have_a_trusted_site_aggregator_key(tmp_path, capsys):
    trust, key = tmp_path / "trust.toml", tmp_path / "site.key"
    write_private(key, AGG.to_pem())
    write_trust(trust, [entry(AGG, "site-s0", "aggregator")])
    with pytest.raises(SystemExit) as done:  # trusted, but as an aggregator
        main(["aggregator", "--site", "s0", "--signing-key", str(key), "--trust", str(trust),
              "--broker", "127.0.0.1:9", "--no-checkpoints"])
    assert done.value.code != 0 and "not site_aggregator site-s0's" in capsys.readouterr().err


def test_the_keyring_rereads_a_changed_trust_file_and_keeps_its_keys_on_a_broken_one(tmp_path):
    trust = tmp_path / "trust.toml"
    write_trust(trust, [entry(AGG, "aggregator", "aggregator")])
    ring = Keyring(None, trust)
    signed = sign(encode_model(MODEL), AGG, "model")
    assert ring.check(signed, "model", "aggregator")[1] is not None
    assert not ring.refresh()  # nothing changed
    write_trust(trust, [entry(AGG, "aggregator", "aggregator", revoked=True)])
    assert ring.refresh()
    with pytest.raises(SignatureRefused, match="revoked_key"):
        ring.check(signed, "model", "aggregator")
    trust.write_text("[[key]]\nid = 1\n")  # broken: the revocation stays in force
    assert not ring.refresh()
    with pytest.raises(SignatureRefused, match="revoked_key"):
        ring.check(signed, "model", "aggregator")


def test_a_swapped_key_file_is_signed_with_and_an_untrusted_one_is_warned_of(tmp_path, caplog):
    trust, key = tmp_path / "trust.toml", tmp_path / "agg.key"
    write_trust(trust, [entry(AGG, "aggregator", "aggregator")])
    write_private(key, AGG.to_pem())
    ring = Keyring(key, trust)
    staged = tmp_path / "new.key"
    write_private(staged, GW.to_pem())
    os.replace(staged, key)
    with caplog.at_level("WARNING"):
        assert ring.refresh()
    assert split(ring.sign(b"{}", "model"))[1] == GW.kid
    assert "will be refused" in caplog.text


def test_a_key_file_readable_by_others_is_refused(tmp_path):
    key = tmp_path / "k.key"
    key.write_bytes(AGG.to_pem())
    key.chmod(0o644)
    with pytest.raises(KeyringError, match="chmod 600"):
        read_private(key)


def test_keys_init_add_revoke_list(tmp_path, capsys):
    trust, key = tmp_path / "trust.toml", tmp_path / "agg.key"

    def cli(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as done:
            main(["keys", *args])
        out = capsys.readouterr()  # the error as one line of words (rich may wrap or box it)
        return done.value.code, out.out, " ".join(out.err.replace("\u2502", " ").split())

    code, out, _ = cli("init", "--node", "aggregator", "--role", "aggregator", "--key",
                       str(key), "--trust", str(trust))
    assert code == 0 and stat.S_IMODE(os.stat(key).st_mode) == 0o600
    kid = read_private(key).kid
    assert out.startswith(kid)
    code, _, err = cli("init", "--node", "aggregator", "--role", "aggregator", "--key",
                       str(key))
    assert code != 0 and "exists" in err
    code, _, err = cli("init", "--node", "x", "--role", "king", "--key", str(tmp_path / "k"))
    assert code != 0 and "--role" in err
    code, out, _ = cli("add", b64(GW.public), "--trust", str(trust), "--node", "gw-0",
                       "--role", "gateway")
    assert code == 0 and GW.kid in out
    code, _, err = cli("add", "bm90IGEga2V5", "--trust", str(trust), "--node", "gw-1",
                       "--role", "gateway")
    assert code != 0 and "not a public key" in err
    code, out, _ = cli("revoke", kid, "--trust", str(trust))
    assert code == 0 and "revoked" in out
    assert {(k.name, k.revoked) for k in read_trust(trust)} == {("aggregator", True),
                                                                 ("gw-0", False)}
    code, out, _ = cli("list", "--trust", str(trust))
    assert code == 0 and len(out.splitlines()) == 2
    code, _, err = cli("revoke", "0000000000000000", "--trust", str(trust))
    assert code != 0 and "no key" in err


@pytest.mark.parametrize("seed", [33, 3124])  # public keys "-mLU3D…" and "--B8aU…"
def test_keys_add_takes_a_public_key_that_begins_with_a_dash(tmp_path, capsys, seed):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    dashed = PrivateKey(Ed25519PrivateKey.from_private_bytes(seed.to_bytes(32, "big")))
    assert b64(dashed.public).startswith("-")  # urlsafe base64: one key in 64
    trust = tmp_path / "trust.toml"
    with pytest.raises(SystemExit) as done:
        main(["keys", "add", "--trust", str(trust), "--node", "gw-0", "--role", "gateway",
              b64(dashed.public)])
    assert done.value.code == 0 and dashed.kid in capsys.readouterr().out
    assert [k.public for k in read_trust(trust)] == [dashed.public]


def test_a_node_whose_own_key_is_not_trusted_as_it_stops_at_once(tmp_path, capsys):
    trust, key = tmp_path / "trust.toml", tmp_path / "agg.key"
    write_trust(trust, [entry(GW, "gw-0", "gateway")])
    key.write_bytes(AGG.to_pem())
    key.chmod(0o600)
    gw_key = tmp_path / "gw.key"
    write_private(gw_key, GW.to_pem())
    with pytest.raises(SystemExit) as done:
        main(["aggregator", "--signing-key", str(key), "--trust", str(trust),
              "--broker", "127.0.0.1:9", "--no-checkpoints"])
    err = capsys.readouterr().err
    assert done.value.code != 0 and "not trusted as aggregator" in err
    with pytest.raises(SystemExit) as done:
        main(["gateway", "--trust", str(trust), "--broker", "127.0.0.1:9"])
    assert done.value.code != 0 and "--trust needs --signing-key" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:  # another node's key
        main(["gateway", "--id", "gw-1", "--signing-key", str(gw_key), "--trust", str(trust),
              "--broker", "127.0.0.1:9"])
    assert done.value.code != 0 and "its own key" in capsys.readouterr().err


def test_the_signing_section_of_a_config_file_sets_the_nodes_options():
    from fleetlearn.config import default_map, parse_config

    found = default_map(parse_config('[signing]\nkey = "n.key"\ntrust = "trust.toml"\n'))
    for command in ("gateway", "aggregator", "predict"):
        assert found[command] == {"key": "n.key", "trust": "trust.toml"}


def test_the_signing_benchmark_measures_both_sides_through_a_gateway():
    from fleetlearn.bench.signing import bench_signature_cost

    (row,) = bench_signature_cost(features=(3,), count=20, repeats=1)
    assert row["verify_us"] > 0 and row["adopt_us"] > 0 and row["signed_adopt_us"] > 0
    assert row["bytes"] > 200 and row["goal"] in ("met", "not met")
