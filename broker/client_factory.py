"""Builds the paho client of a node: VERSION2 callbacks, its id and session, the last will, no
Nagle.

With :mod:`broker.client` (which drives it), the only module that touches paho.

>>> from broker.address import BrokerAddress
>>> client = make_client("gw-0", BrokerAddress(), will_topic="p/learn/status/gw-0")
>>> client.will_topic, client.will_payload, client.max_inflight_messages
('p/learn/status/gw-0', b'offline', 100)
>>> client.protocol == mqtt.MQTTv311, client._client_id.startswith(b"gw-0-")
(True, True)
>>> kept = make_client("gw-0", BrokerAddress(), session="fl-gw-0-0123456789ab")
>>> kept.protocol == mqtt.MQTTv5, kept._client_id
(True, b'fl-gw-0-0123456789ab')
>>> connect_options(None), sorted(connect_options("fl-gw-0-0123456789ab"))
({}, ['clean_start', 'properties'])
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import uuid
from collections.abc import Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from broker.address import BrokerAddress

#: How long the broker keeps an absent node's session (its subscriptions and the QoS 1
#: messages queued for it): an hour, then a node that never came back stops costing memory.
SESSION_EXPIRY = 3600

#: MQTT 5 DISCONNECT reason: another connection took this client id's session over.
SESSION_TAKEN_OVER = 0x8E


def session_id(prefix: str, node: str, subscriptions: Iterable[tuple[str, int]]) -> str:
    """The stable client id of ``node``'s persistent session: readable node id, then a digest of
    the prefix and the subscriptions, so the same node with the same subscriptions resumes its
    session and a node restarted with another partition starts a new one (the old one, no
    longer anyone's, expires after :data:`SESSION_EXPIRY` seconds).

    >>> session_id("fleet", "gw-0", [("fleet/s0/+/reading", 1)])
    'fl-gw-0-02826f5795c8'
    >>> session_id("fleet", "gw-0", [("fleet/s1/+/reading", 1)])
    'fl-gw-0-b9057777facc'
    """
    subs = "\n".join(f"{qos} {topic}" for topic, qos in sorted(set(subscriptions)))
    digest = hashlib.sha256(f"{prefix}\n{node}\n{subs}".encode()).hexdigest()[:12]
    return f"fl-{node}-{digest}"


def make_client(
    node: str,
    broker: BrokerAddress,
    *,
    will_topic: str | None = None,
    session: str | None = None,
) -> mqtt.Client:
    """A paho client for ``node``: VERSION2 callbacks, optional retained last will; a clean
    MQTT 3.1.1 session under a unique id, or with ``session`` (see :func:`session_id`) an MQTT 5
    client under that id, whose session outlives its connection (:func:`connect_options`)."""
    if session is None:
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"{node}-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
    else:
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=session,
            protocol=mqtt.MQTTv5,
        )
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set()
    if will_topic is not None:
        client.will_set(will_topic, b"offline", qos=1, retain=True)
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.on_socket_open = _no_delay
    return client


def connect_options(session: str | None) -> dict[str, object]:
    """The arguments of ``connect`` for a client from :func:`make_client`: none for a clean one;
    for a kept session, no clean start (on every connect, the first included) and a session
    expiry of :data:`SESSION_EXPIRY` seconds."""
    if session is None:
        return {}
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = SESSION_EXPIRY
    return {"clean_start": False, "properties": properties}


def broker_limits(properties: object) -> dict[str, int]:
    """What an MQTT 5 CONNACK says of the broker's settings: ``receive_maximum`` (Mosquitto's
    ``max_inflight_messages``) and ``maximum_packet_size``, where it says them.

    >>> p = Properties(PacketTypes.CONNACK)
    >>> p.ReceiveMaximum = 20
    >>> broker_limits(p), broker_limits(None)
    ({'receive_maximum': 20}, {})
    """
    names = {"receive_maximum": "ReceiveMaximum", "maximum_packet_size": "MaximumPacketSize"}
    found = {key: getattr(properties, name, None) for key, name in names.items()}
    return {key: value for key, value in found.items() if isinstance(value, int)}


def taken_over(reason_code: object) -> bool:
    """The broker closed the connection because another one took this client id over.

    >>> from paho.mqtt.reasoncodes import ReasonCode
    >>> taken_over(ReasonCode(PacketTypes.DISCONNECT, identifier=0x8E)), taken_over(None)
    (True, False)
    """
    return getattr(reason_code, "value", None) == SESSION_TAKEN_OVER


def _no_delay(client: mqtt.Client, userdata: object, sock: object) -> None:
    """Send small packets at once (TCP_NODELAY): with Nagle's algorithm, an update or a model
    written while an earlier packet is unacknowledged waits for the peer's delayed ACK (the
    broker sets it too: ``set_tcp_nodelay``). Measured with ``fleetlearn bench --scenario
    sync``, 8 learners: p50 88 ms with Nagle on both ends, 45 ms with it off here, 1.6 ms
    with it off on both (docs/benchmarks.md)."""
    with contextlib.suppress(AttributeError, OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]
