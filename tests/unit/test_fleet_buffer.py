"""The fleet's send buffer: published means acknowledged, and what does not fit is counted.

The fleet's node is replaced by a stand-in that holds every QoS 1 message until the test
acknowledges it: a broker that has stopped answering."""

import time
from collections.abc import Callable

import pytest

import devices.fleet
from broker.address import BrokerAddress
from broker.topics import Topics
from devices.fleet import Fleet, FleetConfig


@pytest.fixture(autouse=True)
def _time_enough(monkeypatch):
    """Each turn makes all that is due (a loaded machine would otherwise end a turn early)."""
    monkeypatch.setattr(devices.fleet, "TICK", 60.0)


class SilentBroker:
    """A node whose broker acknowledges nothing until told to."""

    def __init__(self) -> None:
        self.waiting: list[Callable[[], None]] = []
        self.sent: list[tuple[str, int]] = []

    @property
    def unacked(self) -> int:
        return len(self.waiting)

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                on_ack: Callable[[], None] | None = None) -> None:
        self.sent.append((topic, qos))
        if qos:
            self.waiting.append(on_ack or (lambda: None))

    def ack_all(self) -> None:
        waiting, self.waiting = self.waiting, []
        for then in waiting:
            then()


def fleet_due(readings: int, **config) -> tuple[Fleet, SilentBroker]:
    """A fleet whose clock says ``readings`` (a few more at most) are due, on a silent broker."""
    fleet = Fleet(FleetConfig(devices=4, sites=1, rate=1000.0, **config), Topics("t"),
                  BrokerAddress())
    node = SilentBroker()
    fleet.node = node  # type: ignore[assignment]
    fleet._t0 = time.monotonic() - readings / 1000.0
    return fleet, node


def test_a_full_send_buffer_counts_the_readings_it_cannot_send_and_none_is_published():
    fleet, node = fleet_due(100, batch=2, send_buffer=3)
    fleet.publish_due()
    assert node.unacked == 3 and fleet.sent == 6
    assert fleet.published == 0  # sent, not acknowledged: not published
    assert fleet.send_buffer_full >= 94 and fleet.send_buffer_full % 2 == 0
    assert fleet.sim.published == 6  # a reading that did not fit was never made: no gap
    node.ack_all()
    assert fleet.published == 6
    counters = fleet.counters()
    assert counters["send_buffer_full"] == fleet.send_buffer_full
    assert counters["unacked_readings"] == 0 and counters["published_means"] == "acknowledged"


def test_readings_that_did_not_fit_are_not_sent_later_in_a_burst():
    fleet, node = fleet_due(100, batch=1, send_buffer=5)
    fleet.publish_due()
    dropped = fleet.send_buffer_full
    node.ack_all()
    fleet.publish_due()  # room again: only what came due since is sent
    assert fleet.sent - 5 < 50 and fleet.send_buffer_full == dropped


def test_sent_but_unacknowledged_readings_are_said():
    fleet, _ = fleet_due(10, batch=5, send_buffer=100)
    fleet.publish_due()
    counters = fleet.counters()
    assert counters["published"] == 0 and counters["unacked_readings"] == counters["sent"] >= 10


def test_at_qos_0_published_means_sent_and_nothing_waits():
    fleet, node = fleet_due(50, batch=1, qos=0, send_buffer=1)
    fleet.publish_due()
    assert fleet.published == fleet.sent >= 50 and fleet.send_buffer_full == 0
    assert {qos for _, qos in node.sent} == {0}
    assert fleet.counters()["published_means"] == "sent"


def test_a_send_buffer_below_one_is_refused():
    with pytest.raises(ValueError, match="send_buffer"):
        Fleet(FleetConfig(send_buffer=0), Topics("t"), BrokerAddress())


def test_a_fleet_that_cannot_keep_its_rate_falls_behind_and_says_so(monkeypatch):
    monkeypatch.setattr(devices.fleet, "TICK", 0.0)  # one message a turn, then the network's
    fleet, _ = fleet_due(100, batch=2, send_buffer=1000)
    fleet.publish_due()
    assert fleet.sent == 2 and fleet.send_buffer_full == 0
    assert fleet.counters()["behind"] >= 98 and fleet.behind % 2 == 0
