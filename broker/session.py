"""How a node connects (:class:`Session`) and the stable client id of a kept session
(:func:`session_id`); pure, used by :mod:`broker.client_factory` to build the paho client."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Session:
    """How a node connects, when not clean under a unique id with MQTT 3.1.1 (the default).

    ``kept_id``: a stable client id (:func:`session_id`) whose MQTT 3.1.1 session (clean session
    off) outlives the connection, so the broker queues QoS 1 messages for the node while it is
    away. ``mqtt5``: a clean MQTT 5 connection, whose CONNACK tells something of the broker's
    settings (:func:`broker_limits`).
    """

    kept_id: str | None = None
    mqtt5: bool = False
    #: QoS 1 messages paho keeps in flight before it queues them (0: no limit). Past the limit
    #: paho walks its in-flight messages at every acknowledgement (~28 us a message when a
    #: predictor publishes a QoS 1 prediction per reading); a node that counts its own unacked
    #: messages (``Node.unacked``) may lift it.
    max_inflight: int = 100

    @property
    def acks_when_done(self) -> bool:
        """A kept session acknowledges a QoS 1 message once the node has handled it (paho's
        manual acks), not as paho reads it: what a node read and did not handle before it
        stopped or died, the broker delivers again to the next session. A clean session gains
        nothing by it (the broker drops its queue with it), so it keeps paho's acks."""
        return self.kept_id is not None

    def check(self, subscriptions: Iterable[tuple[str, int]]) -> None:
        """A session that acknowledges when done subscribes at QoS 0 or 1: at QoS 2 the PUBREC
        already tells the broker a message arrived (nothing to redeliver), and paho's manual
        acks leave a PUBREL of a message from before a restart without its PUBCOMP.

        >>> Session("fl-x-0").check([("a/b", 2)])
        Traceback (most recent call last):
        ValueError: a kept session subscribes at QoS 0 or 1, not 2 (a/b)
        """
        for topic, qos in subscriptions:
            if qos > 1 and self.acks_when_done:
                raise ValueError(f"a kept session subscribes at QoS 0 or 1, not 2 ({topic})")


def session_id(prefix: str, node: str, subscriptions: Iterable[tuple[str, int]]) -> str:
    """The stable client id of ``node``'s kept session: readable node id, then a digest of the
    prefix and the subscriptions, so the same node with the same subscriptions resumes its
    session and a node restarted with another partition starts a new one (the old one, no
    longer anyone's, goes at the broker's ``persistent_client_expiration``).

    >>> session_id("fleet", "gw-0", [("fleet/s0/+/reading", 1)])
    'fl-gw-0-02826f5795c8'
    >>> session_id("fleet", "gw-0", [("fleet/s1/+/reading", 1)])
    'fl-gw-0-b9057777facc'
    """
    subs = "\n".join(f"{qos} {topic}" for topic, qos in sorted(set(subscriptions)))
    digest = hashlib.sha256(f"{prefix}\n{node}\n{subs}".encode()).hexdigest()[:12]
    return f"fl-{node}-{digest}"
