"""A node's turn: it reads what is waiting, handles it in order, then calls on_drained once;
and its socket sends small packets at once (no Nagle)."""

import socket

import pytest

from broker.client import Node
from tests.mqtt_helpers import Recorder, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def test_a_turn_takes_in_a_backlog_in_order_and_drains_once(address, prefix):
    got: list[bytes] = []
    turns: list[int] = []
    sub = Node("turns-sub", address, subscriptions=[(f"{prefix}/x", 0)],
               handler=lambda t, p: got.append(p), on_drained=lambda: turns.append(len(got)))
    sub.connect(timeout=5)
    pub = Node("turns-pub", address)
    pub.connect(timeout=5)
    for i in range(500):
        pub.publish(f"{prefix}/x", str(i).encode())
    pub.flush()
    pub.publish(f"{prefix}/x", b"end", qos=1)
    assert pub.flush()
    wait_until(lambda: got[-1:] == [b"end"], 10, sub.poll, "the backlog")
    assert got == [str(i).encode() for i in range(500)] + [b"end"]
    assert len(turns) < 100  # not one turn per message
    assert turns == sorted(turns) and turns[-1] == 501  # once per turn, after its messages
    sub.close(1.0)
    pub.close(1.0)


def test_a_failing_on_drained_is_counted_and_the_loop_goes_on(address, prefix):
    got: list[bytes] = []

    def fail() -> None:
        raise RuntimeError("boom")

    sub = Node("turns-fail", address, subscriptions=[(f"{prefix}/y", 1)],
               handler=lambda t, p: got.append(p), on_drained=fail)
    sub.connect(timeout=5)
    pub = Node("turns-pub2", address)
    pub.connect(timeout=5)
    pub.publish(f"{prefix}/y", b"1", qos=1)
    pub.flush()
    wait_until(lambda: got == [b"1"], 10, sub.poll, "the first message")
    pub.publish(f"{prefix}/y", b"2", qos=1)
    pub.flush()
    wait_until(lambda: got == [b"1", b"2"], 10, sub.poll, "the second message")
    assert sub.handler_errors >= 2
    sub.close(1.0)
    pub.close(1.0)


def test_nodes_send_small_packets_at_once(address):
    node = Node("nodelay", address)
    node.connect(timeout=5)
    sock = node.socket()
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    node.close(1.0)


def test_pump_moves_the_network_and_delivered_says_when_all_is_out(address, prefix):
    recorder = Recorder(address, f"{prefix}/p")
    node = Node("pumped", address)
    node.connect(timeout=5)
    assert node.connected and node.delivered
    node.publish(f"{prefix}/p", b"x", qos=1)
    assert not node.delivered  # not acknowledged yet
    wait_until(lambda: node.delivered, 10, lambda: node.pump(0.01), "the acknowledgement")
    recorder.wait(lambda: recorder.on("/p") == [b"x"], what="the message")
    assert node.pump(0) is True
    node.close(1.0)
    assert not node.connected and node.socket() is None
    recorder.close()
