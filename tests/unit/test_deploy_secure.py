"""`up --secure`'s files without a broker (fleetlearn/deploy/secure.py): what it makes, that a
re-run keeps it, and how each node is told to connect and sign."""

from __future__ import annotations

import stat

import pytest

from broker.address import BrokerAddress
from broker.keyring import Keyring, read_private, read_trust
from broker.signing import SignatureRefused
from broker.topics import Topics
from fleetlearn.deploy.processes import connection
from fleetlearn.deploy.secure import login, secure, signing
from fleetlearn.deploy.settings import UpSettings

pytestmark = pytest.mark.timeout(60)

T = Topics("fleet")
DEVICES = ("s0-d0000", "s1-d0001")


def test_it_makes_the_broker_files_a_key_per_signing_node_and_their_trust(tmp_path):
    d = secure(tmp_path / "s", T, 2, DEVICES)
    for f in (d.files.ca_cert, d.files.server_cert, d.files.password_file, d.files.acl_file):
        assert f.exists(), f
    users = d.files.users()
    assert {u: v["role"] for u, v in users.items() if u in ("aggregator", "gw-1", DEVICES[0])
            } == {"aggregator": "aggregator", "gw-1": "gateway", DEVICES[0]: "device"}
    trusted = {(k.name, k.role): k for k in read_trust(d.trust)}
    assert set(trusted) == {("aggregator", "aggregator"), ("gw-0", "gateway"),
                            ("gw-1", "gateway")}
    for name, role in trusted:
        key_file = d.key(name)
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = read_private(key_file)
        assert trusted[name, role].public == key.public
    # the aggregator's key signs what the gateways' keyrings accept as the aggregator's
    ring = Keyring(d.key("aggregator"), d.trust)
    body, signer = Keyring(d.key("gw-0"), d.trust).check(ring.sign(b'{"v":1}', "model"),
                                                         "model", "aggregator")
    assert body == b'{"v":1}' and signer.name == "aggregator"
    # and a gateway's key does not sign a model
    forged = Keyring(d.key("gw-1"), d.trust).sign(b'{"v":2}', "model")
    with pytest.raises(SignatureRefused, match="wrong_signer"):
        ring.check(forged, "model", "aggregator")


def test_a_rerun_keeps_the_ca_passwords_and_keys_and_adds_what_is_missing(tmp_path):
    first = secure(tmp_path / "s", T, 2, DEVICES)
    ca, users = first.files.ca_cert.read_bytes(), first.files.users()
    keys = {n: first.key(n).read_bytes() for n in ("aggregator", "gw-0", "gw-1")}
    trust = first.trust.read_bytes()
    again = secure(tmp_path / "s", T, 2, DEVICES)
    assert again.files.ca_cert.read_bytes() == ca and again.files.users() == users
    assert {n: again.key(n).read_bytes() for n in keys} == keys
    assert again.trust.read_bytes() == trust
    # one gateway more: its key and password are added, nothing else changes
    more = secure(tmp_path / "s", T, 3, DEVICES)
    assert {k.name for k in read_trust(more.trust)} == {"aggregator", "gw-0", "gw-1", "gw-2"}
    assert {n: more.key(n).read_bytes() for n in keys} == keys
    assert more.files.password("gw-0") == users["gw-0"]["password"]
    assert "gw-2" in more.files.users()


def test_each_node_logs_in_as_itself_with_its_password_in_its_environment(tmp_path):
    d = secure(tmp_path / "s", T, 1, ())
    broker = BrokerAddress(port=8884, tls=True)
    argv, env = connection(login(d, broker, "gw-0"), {"PATH": "/bin"})
    assert argv == ["--broker", "mqtts://127.0.0.1:8884", "--tls-ca", str(d.files.ca_cert)]
    assert env == {"PATH": "/bin", "FLEETLEARN_USERNAME": "gw-0",
                   "FLEETLEARN_PASSWORD": d.files.password("gw-0")}
    assert signing(d, "gw-0") == ["--signing-key", str(d.key("gw-0")), "--trust", str(d.trust)]
    assert signing(d, "predictor") == ["--trust", str(d.trust)]
    assert signing(d, "replay") == [] and signing(None, "gw-0") == []
    assert login(None, broker, "gw-0") is broker  # a plain deployment: as up connects


def test_secure_is_for_the_broker_up_starts_not_one_given():
    with pytest.raises(ValueError, match="--secure starts a secured broker of its own"):
        UpSettings(secure=True, broker=BrokerAddress(port=8883, tls=True))
    assert UpSettings(secure=True).broker is None
