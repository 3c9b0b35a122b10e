"""The bridge section and the bridge role, pure: what crosses, how it logs in, what the core's
ACL lets a site's bridge do."""

from pathlib import Path

import pytest

from broker.acl import parse_acl, permits, render_acl, roster
from broker.bridge import BridgeSpec, bridge_lines, bridged_topics
from broker.topics import TopicError, Topics

T = Topics("fleet")
pytestmark = pytest.mark.timeout(10)


def test_secured_bridge_logs_in_over_tls():
    spec = BridgeSpec("s0", "core", 8883, tls_ca=Path("/d/ca.crt"), username="bridge-s0",
                      password="pw")
    lines = bridge_lines(T, spec)
    assert {"remote_username bridge-s0", "remote_password pw", "bridge_cafile /d/ca.crt",
            "bridge_insecure false", "bridge_tls_version tlsv1.2"} <= set(lines)
    assert lines[0] == "connection fleetlearn-s0"  # the rest belongs to this connection


def test_plain_bridge_has_no_tls_or_login():
    assert not [x for x in bridge_lines(T, BridgeSpec("s0", "core", 18830))
                if x.startswith(("bridge_cafile", "remote_username", "remote_password"))]


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"site": "learn"}, "reserved"), ({"site": "a/b"}, "invalid site"),
    ({"port": 0}, "port"), ({"keepalive": 2}, "keepalive"),
    ({"username": "u"}, "both"), ({"tls_cert": Path("c")}, "key"),
    ({"tls_cert": Path("c"), "tls_key": Path("k")}, "CA"),
])
def test_bad_specs_are_refused(kwargs, says):
    fields = {"site": "s0", "host": "core", "port": 18830, **kwargs}
    with pytest.raises((ValueError, TopicError), match=says):
        BridgeSpec(**fields)


def test_nothing_comes_down_but_the_model_and_readings_only_go_up_when_asked():
    for spec in (BridgeSpec("s0", "c", 1), BridgeSpec("s0", "c", 1, forward_readings=True),
                 BridgeSpec("s0", "c", 1, hierarchical=True)):
        rows = bridged_topics(T, spec)
        assert [r[0] for r in rows if r[1] != "out"] in (["learn/model"], ["model"])
        assert any("reading" in r[0] for r in rows) == spec.forward_readings


def test_the_bridge_role_writes_what_goes_up_and_reads_only_the_model():
    acl = parse_acl(render_acl(T, roster(1, sites=["s0"])))
    user = "bridge-s0"
    for topic in (T.update("gw-0"), T.node_status("gw-0"), T.metrics("gw-0"),
                  T.deadletter("gw-0"), T.reading("s0", "s0-d1")):
        assert permits(acl, user, "write", topic), topic
    assert permits(acl, user, "read", T.model)
    assert not permits(acl, user, "write", T.model)
    assert not permits(acl, user, "write", T.reading("s1", "s1-d1"))
    assert not permits(acl, user, "read", T.readings_filter())
    assert not permits(acl, user, "read", T.updates_filter)


def test_a_site_aggregator_reads_the_global_model_and_writes_only_its_own_update():
    acl = parse_acl(render_acl(T, roster(1, sites=["s0", "s1"])))
    user = "site-s0"
    assert permits(acl, user, "read", T.global_model) and permits(acl, user, "read", T.model)
    assert permits(acl, user, "write", T.model)  # the site model, at its site broker
    assert permits(acl, user, "write", T.update("site-s0"))
    assert not permits(acl, user, "write", T.update("site-s1"))
    assert permits(acl, user, "write", T.node_status("site-s0"))
    assert not permits(acl, "gw-0", "read", T.global_model)
