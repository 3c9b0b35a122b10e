"""The secured broker's files without a broker: certificates, the ACL's rules per role, and
regenerating keeps what exists."""

from __future__ import annotations

import datetime as dt
import stat

import pytest

from broker import pki
from broker.acl import NODE_USERS, parse_acl, permits, render_acl, roster
from broker.secure import SecureDir, generate
from broker.topics import Topics

pytestmark = pytest.mark.timeout(60)

T = Topics("fleet")
USERS = roster(2, ["s0-d0000", "s1-d0001"])
ACL = parse_acl(render_acl(T, USERS))


def test_the_server_certificate_chains_to_the_ca_and_names_its_hosts():
    ca = pki.make_ca()
    server = pki.issue(ca, "broker", hosts=("10.0.0.5", "broker.lan"))
    assert pki.verifies(server.cert, ca.cert)
    assert not pki.verifies(server.cert, pki.make_ca().cert)
    assert pki.san_names(server.cert) == ["10.0.0.5", "127.0.0.1", "broker.lan", "localhost"]
    left = server.cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=365) < left <= dt.timedelta(days=pki.LEAF_DAYS)
    assert pki.covers(server.cert, ("broker.lan",)) and not pki.covers(server.cert, ("x.lan",))
    assert not pki.covers(server.cert, (), min_days=pki.LEAF_DAYS + 1)


def test_a_client_certificate_is_for_clients_only():
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID
    ca = pki.make_ca()
    client = pki.issue(ca, "gw-0", client=True)
    usage = client.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH] and pki.verifies(client.cert, ca.cert)
    assert client.cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "gw-0"


# (user, access, topic, allowed): each line is a rule of the issue, or one it rules out
CASES = [
    ("s0-d0000", "write", T.reading("s0", "s0-d0000"), True),
    ("s0-d0000", "write", T.device_status("s0", "s0-d0000"), True),
    ("s0-d0000", "write", T.reading("s0", "s1-d0001"), False),  # another device's
    ("s0-d0000", "write", T.model, False),
    ("s0-d0000", "write", T.update("s0-d0000"), False),  # no update under its own name
    ("s0-d0000", "write", T.metrics("s0-d0000"), False),
    ("s0-d0000", "read", T.reading("s0", "s0-d0000"), False),  # reads nothing
    ("s0-d0000", "read", T.prediction("s0", "s0-d0000"), False),
    ("fleet", "write", T.reading("s1", "s1-d0001"), True),
    ("fleet", "write", T.device_status("s1", "s1-d0001"), True),
    ("fleet", "write", T.model, False),
    ("replay", "write", T.reading("s1", "s1-d0001"), True),
    ("gw-0", "read", T.readings_filter(), True),
    ("gw-0", "read", T.model, True),
    ("gw-0", "write", T.update("gw-0"), True),
    ("gw-0", "write", T.update("gw-1"), False),
    ("gw-0", "write", T.model, False),
    ("gw-0", "write", T.node_status("gw-1"), False),
    ("gw-0", "write", T.metrics("gw-0"), True),
    ("gw-0", "write", T.deadletter("gw-0"), True),
    ("gw-0", "read", T.updates_filter, False),
    ("gw-0", "write", T.reading("s0", "s0-d0000"), False),
    ("aggregator", "write", T.model, True),
    ("aggregator", "read", T.updates_filter, True),
    ("aggregator", "read", T.node_status_filter, True),
    ("aggregator", "read", T.readings_filter(), False),
    ("predictor", "read", T.readings_filter("s1"), True),
    ("predictor", "read", T.model, True),
    ("predictor", "write", T.prediction("s0", "s0-d0000"), True),
    ("predictor", "write", T.model, False),
    ("monitor", "read", T.model, True),
    ("monitor", "read", T.metrics_filter, True),
    ("monitor", "read", T.deadletter_filter, True),
    ("monitor", "read", T.readings_filter(), False),
    ("monitor", "write", T.model, False),
    ("monitor", "write", T.metrics("monitor"), False),
    (None, "read", T.model, False),  # anonymous
    (None, "write", T.reading("s0", "s0-d0000"), False),
    ("stranger", "write", T.reading("s0", "stranger"), True),  # patterns hold for any user:
    # the broker's password file decides who is a user at all
]


@pytest.mark.parametrize(("user", "access", "topic", "allowed"), CASES,
                         ids=[f"{u}-{a}-{t}" for u, a, t, _ in CASES])
def test_each_role_may_do_what_the_issue_says_and_no_more(user, access, topic, allowed):
    assert permits(ACL, user, access, topic) is allowed


@pytest.mark.parametrize("user", sorted(USERS))
def test_no_user_may_read_everything(user):
    assert not permits(ACL, user, "read", "#")
    assert not permits(ACL, user, "read", f"{T.prefix}/#")
    assert not permits(ACL, user, "read", f"{T.prefix}/learn/#")


def test_no_rule_names_a_multi_level_wildcard():
    assert "#" not in "".join(line for line in render_acl(T, USERS).splitlines()
                              if not line.startswith("#"))


def test_device_ids_may_not_be_node_users():
    for node in ["gw-1", *NODE_USERS]:
        with pytest.raises(ValueError, match="node's user name"):
            roster(2, [node])


def test_generating_again_keeps_the_ca_and_every_password_and_adds_users(tmp_path):
    where = tmp_path / "secure"
    first = generate(where, T, gateways=1, devices=("s0-d0000",))
    ca, server, users = (first.ca_cert.read_bytes(), first.server_cert.read_bytes(),
                         first.users())
    again = generate(where, Topics("other"), gateways=2, devices=("s0-d0005",))
    assert again.ca_cert.read_bytes() == ca and again.server_cert.read_bytes() == server
    assert {u: again.users()[u] for u in users} == users
    assert {"gw-1", "s0-d0005"} <= set(again.users())
    assert "pattern write other/+/%u/reading" in again.acl_file.read_text()
    passwd = dict(line.split(":", 1) for line in again.password_file.read_text().splitlines())
    assert set(passwd) == set(again.users())
    assert all(h.startswith("$7$") for h in passwd.values())  # hashed, not the passwords
    for private in (again.ca_key, again.server_key, again.credentials_file, again.password_file):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    assert stat.S_IMODE(where.stat().st_mode) == 0o700
    assert not (where / "passwd.plain").exists()


def test_an_existing_directory_keeps_its_mode(tmp_path):
    tmp_path.chmod(0o755)
    generate(tmp_path, T, gateways=0)
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


def test_a_new_host_gets_a_new_server_certificate_from_the_same_ca(tmp_path):
    first = generate(tmp_path, T, gateways=0)
    again = generate(tmp_path, T, gateways=0, hosts=("broker.lan",))
    server, ca = (pki.load(again.server_key, again.server_cert).cert,
                  pki.load(again.ca_key, again.ca_cert).cert)
    assert "broker.lan" in pki.san_names(server) and pki.verifies(server, ca)
    assert first.ca_cert.read_bytes() == again.ca_cert.read_bytes()


def test_client_certificates_for_mutual_tls(tmp_path):
    files = generate(tmp_path, T, gateways=1, client_certs=True)
    ca = pki.load(files.ca_key, files.ca_cert).cert
    pair = pki.load(files.client_key("gw-0"), files.client_cert("gw-0"))
    assert pki.verifies(pair.cert, ca)
    assert stat.S_IMODE(files.client_key("gw-0").stat().st_mode) == 0o600
    assert "require_certificate true" in SecureDir(tmp_path).broker_lines(True)


def test_a_user_keeps_its_role(tmp_path):
    generate(tmp_path, T, gateways=0, devices=("gw-7",))
    with pytest.raises(RuntimeError, match="gw-7 is a device, not a gateway"):
        generate(tmp_path, T, gateways=8)
