"""Kept sessions without a broker: the client ids, the claims, the broker config we write and
the warning about one we did not."""

from pathlib import Path

import pytest

from broker.address import BrokerAddress
from broker.client_factory import Session, make_client, session_id
from broker.mosquitto import render_config
from broker.presence import Claim, config_warning

pytestmark = [pytest.mark.timeout(10)]

SUBS = [("fleet/s0/+/reading", 1), ("fleet/learn/ping/gw-0", 1)]


def test_the_config_we_write_saves_every_second_and_bounds_the_queues():
    lines = render_config(18830, Path("/tmp/d"), run_as="u").splitlines()
    assert "persistence true" in lines
    assert "autosave_interval 1" in lines
    assert "autosave_on_changes true" not in lines  # the interval counts seconds, not changes
    assert "max_queued_messages 200000" in lines
    assert "max_queued_bytes 134217728" in lines
    assert "max_inflight_messages 1000" in lines
    assert "persistent_client_expiration 1h" in lines  # a kept session nobody resumes goes


def test_a_session_id_is_stable_and_names_the_node():
    one = session_id("fleet", "gw-0", SUBS)
    assert one == session_id("fleet", "gw-0", list(reversed(SUBS)))  # order does not matter
    assert one.startswith("fl-gw-0-") and len(one) <= 8 + 64 + 12
    assert all(c.isalnum() or c in "-_.:" for c in one)


@pytest.mark.parametrize("other", [("fleet2", "gw-0", SUBS), ("fleet", "gw-1", SUBS),
                                   ("fleet", "gw-0", [("fleet/s1/+/reading", 1), SUBS[1]]),
                                   ("fleet", "gw-0", [("fleet/s0/+/reading", 0), SUBS[1]])])
def test_another_prefix_node_or_subscription_is_another_session(other):
    assert session_id(*other) != session_id("fleet", "gw-0", SUBS)


def test_a_kept_session_is_never_clean_and_keeps_its_id():
    kept = make_client("gw-0", BrokerAddress(), session=Session("fl-gw-0-0123456789ab"))
    assert kept._clean_session is False and kept._client_id == b"fl-gw-0-0123456789ab"
    one, two = (make_client("gw-0", BrokerAddress()) for _ in range(2))
    assert one._clean_session is True and one._client_id != two._client_id


@pytest.mark.parametrize("payload", [b"", b"online", b"12:", b":abc", b"-1:abc", b"1e3:abc",
                                     b"1:" + b"x" * 65, b"\xff\xfe:ab", b"9" * 21 + b":ab",
                                     "²:ab".encode()])
def test_anything_but_a_claim_is_no_claim(payload):
    assert Claim.decode(payload) is None


def test_the_newer_claim_wins():
    old, new = Claim(10, "zz"), Claim(11, "aa")
    assert new > old and Claim.decode(new.encode()) == new


def test_a_broker_unlike_ours_gets_a_warning_naming_the_settings():
    assert config_warning({"receive_maximum": 1000, "maximum_packet_size": 1 << 20}) is None
    for limits in ({"receive_maximum": 20}, {}, {"receive_maximum": 1000}):
        text = config_warning(limits)
        assert text is not None
        for setting in ("max_queued_messages", "max_inflight_messages", "set_tcp_nodelay",
                        "persistence", "autosave_interval"):
            assert setting in text
