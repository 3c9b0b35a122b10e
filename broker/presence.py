"""One live process per node id, and a word on a broker set up unlike fleetlearn's own.

A node with a kept session (gateway, aggregator, predictor) connects under a stable client id,
so a second process started with the same ``--id`` would take the session over, and the two
would take it from each other in turn. Before connecting its session a node asks
(:func:`check_free`), on a throwaway connection:

1. it subscribes to ``{p}/learn/status/{node}``, ``{p}/learn/claim/{node}`` and
   ``{p}/learn/ping/{node}``, and pings with its own :class:`Claim`;
2. its ping coming back marks that every retained message of those topics has arrived; if the
   status is not ``online`` the id is free;
3. if it is ``online``, the holder (which listens to its ping topic) answers with its claim on
   the claim topic: any claim after the ping's echo means a live holder, and the newcomer
   refuses to start (:class:`NodeConflict`, exit 1). No answer within :data:`PRESENCE_WAIT`
   seconds means a holder the broker has not yet noticed is gone (its keepalive has not run
   out): the newcomer goes on.

Then it publishes its claim, retained. A running node that sees a newer claim than its own (two
started at the same moment, or one that came back after the broker gave it up) stops: the
newest claim wins, so one process survives and none ping-pongs.

>>> Claim.decode(Claim(5, "ab").encode()), Claim.decode(b"x:y"), Claim(5, "b") > Claim(4, "c")
(Claim(ns=5, token='ab'), None, True)
>>> config_warning({"receive_maximum": 1000, "maximum_packet_size": 1048576}) is None
True
>>> print(config_warning({"receive_maximum": 20}))  # doctest: +ELLIPSIS
the broker's max_inflight_messages is 20 ... max_queued_messages 200000, ...
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from broker.address import BrokerAddress, BrokerUnreachable
from broker.client import Node
from broker.client_factory import Session
from broker.mosquitto import (
    AUTOSAVE_INTERVAL,
    MAX_INFLIGHT_MESSAGES,
    MAX_QUEUED_BYTES,
    MAX_QUEUED_MESSAGES,
    SESSION_EXPIRATION,
)
from broker.node_status import is_online
from broker.topics import Topics

log = logging.getLogger(__name__)

#: Seconds a newcomer waits for the holder of an ``online`` id to answer its ping.
PRESENCE_WAIT = 5.0


class NodeConflict(BrokerUnreachable):
    """Another live process holds this node id."""


def conflict_message(node: str) -> str:
    return f"another node is connected as {node}"


@dataclass(frozen=True, order=True)
class Claim:
    """A process's hold on a node id: when it started (ns since the epoch) and a random token."""

    ns: int
    token: str

    @classmethod
    def new(cls) -> Claim:
        return cls(time.time_ns(), uuid.uuid4().hex)

    def encode(self) -> bytes:
        return f"{self.ns}:{self.token}".encode()

    @classmethod
    def decode(cls, payload: bytes) -> Claim | None:
        """The claim in ``payload``, or None for anything else (trust nothing on the wire)."""
        ns, _, token = payload.decode(errors="replace").partition(":")
        if not (ns.isascii() and ns.isdigit()) or len(ns) > 20 or not 0 < len(token) <= 64:
            return None
        return cls(int(ns), token)


def check_free(node_id: str, topics: Topics, broker: BrokerAddress, claim: Claim,
               wait: float = PRESENCE_WAIT) -> dict[str, int]:
    """Raise :class:`NodeConflict` when a live process holds ``node_id``; else publish ``claim``
    (retained) as the id's holder, and return what the broker said of its limits (the check
    connects with MQTT 5 for that: :func:`broker.client_factory.broker_limits`)."""
    status, claims, ping = topics.node_status(node_id), topics.claim(node_id), topics.ping(node_id)
    seen = {"online": False, "echoed": False, "answered": False}

    def handle(topic: str, payload: bytes) -> None:
        if topic == status:
            seen["online"] = is_online(payload)
        elif topic == ping and payload == claim.encode():
            seen["echoed"] = True
        elif topic == claims and seen["echoed"] and Claim.decode(payload) not in (None, claim):
            seen["answered"] = True

    probe = Node(f"{node_id}-presence", broker, handler=handle, session=Session(mqtt5=True),
                 subscriptions=[(status, 1), (claims, 1), (ping, 1)])
    probe.connect()
    try:
        probe.publish(ping, claim.encode(), qos=1)
        deadline = time.monotonic() + wait
        while not seen["answered"] and time.monotonic() < deadline:
            if seen["echoed"] and not seen["online"]:
                break
            probe.poll(0.02)
        if seen["answered"]:
            raise NodeConflict(conflict_message(node_id))
        if seen["online"]:
            log.warning("%s: status says online but no one answered in %.0f s; taking the id",
                        node_id, wait)
        probe.publish(claims, claim.encode(), qos=1, retain=True)
    finally:
        probe.close()
    return probe.broker_limits


def config_warning(limits: dict[str, int]) -> str | None:
    """A warning when the broker's CONNACK shows it is not set up as fleetlearn's own broker
    (which says a receive maximum of ``max_inflight_messages`` and a maximum packet size), else
    None. The queue limits and persistence cannot be seen from a client: the warning names them.
    """
    inflight = limits.get("receive_maximum", 65535)
    if inflight == MAX_INFLIGHT_MESSAGES and "maximum_packet_size" in limits:
        return None
    return (f"the broker's max_inflight_messages is {inflight} (fleetlearn's broker: "
            f"{MAX_INFLIGHT_MESSAGES}): it looks like a broker fleetlearn did not configure. "
            "Readings it cannot queue for a slow or absent node are dropped and show only as "
            "gaps: check max_queued_messages, max_queued_bytes, max_inflight_messages, "
            "set_tcp_nodelay, persistence, autosave_interval and persistent_client_expiration "
            "(fleetlearn's broker: "
            f"max_queued_messages {MAX_QUEUED_MESSAGES}, max_queued_bytes {MAX_QUEUED_BYTES}, "
            f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}, set_tcp_nodelay true, "
            f"persistence true, autosave_interval {AUTOSAVE_INTERVAL}, "
            f"persistent_client_expiration {SESSION_EXPIRATION})")
