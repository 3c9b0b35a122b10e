"""Builds the paho client of a node: VERSION2 callbacks, its id and session, the last will, no
Nagle.

With :mod:`broker.client` (which drives it), the only module that touches paho.

>>> from broker.address import BrokerAddress, BrokerRefused, tls_context
>>> client = make_client("gw-0", BrokerAddress(), will_topic="p/learn/status/gw-0")
>>> client.will_topic, client.will_payload, client.max_inflight_messages
('p/learn/status/gw-0', b'offline', 100)
>>> client.protocol == mqtt.MQTTv311, client._clean_session, client._client_id[:5]
(True, True, b'gw-0-')
>>> client._manual_ack  # paho acknowledges what it reads: a clean session keeps nothing
False
>>> kept = make_client("gw-0", BrokerAddress(), session=Session("fl-gw-0-0123456789ab"))
>>> kept.protocol == mqtt.MQTTv311, kept._clean_session, kept._client_id, kept._manual_ack
(True, False, b'fl-gw-0-0123456789ab', True)
>>> make_client("gw-0", BrokerAddress(), session=Session(mqtt5=True)).protocol == mqtt.MQTTv5
True
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
import uuid
from collections.abc import Callable

import paho.mqtt.client as mqtt

from broker.address import BrokerAddress, tls_context
from broker.session import Session, session_id

__all__ = ["Session", "Wire", "broker_limits", "make_client", "on_tls_alert", "session_id"]


def make_client(
    node: str,
    broker: BrokerAddress,
    *,
    will_topic: str | None = None,
    session: Session | None = None,
) -> mqtt.Client:
    """A paho client for ``node``: VERSION2 callbacks, optional retained last will, connecting
    as ``session`` says (default: clean, MQTT 3.1.1, a unique id).

    Kept sessions are MQTT 3.1.1, not MQTT 5 with a session expiry: paho decodes every MQTT 5
    PUBLISH's properties in Python, ~30 us a message against ~3 us in 3.1.1 (``timeit`` of
    paho's ``decode_publish``, a 1 KiB reading), on the gateway's hottest path."""
    session = session or Session()
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=session.kept_id or f"{node}-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5 if session.mqtt5 else mqtt.MQTTv311,
        clean_session=None if session.mqtt5 else session.kept_id is None,
        manual_ack=session.acks_when_done,
    )
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set_context(tls_context(broker))
    if will_topic is not None:
        client.will_set(will_topic, b"offline", qos=1, retain=True)
    client.max_inflight_messages_set(session.max_inflight)
    client.max_queued_messages_set(0)
    client.on_socket_open = _no_delay
    return client


def on_tls_alert(client: mqtt.Client, then: Callable[[str], None] | None) -> None:
    """Hand ``then`` what paho says of a TLS error on a read (an alert the broker sends after
    the handshake, e.g. TLS 1.3's "certificate required" for a client without one, or the
    connection simply closed in the middle of TLS); None: stop. paho formats every log line
    for a callback, so this is for while connecting only.

    >>> seen = []
    >>> client = make_client("n", BrokerAddress())
    >>> on_tls_alert(client, seen.append)
    >>> client.on_log(client, None, mqtt.MQTT_LOG_ERR, "failed to receive on socket: "
    ...               "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert (_ssl.c:2580)")
    >>> on_tls_alert(client, None); seen, client.on_log
    (['[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert (_ssl.c:2580)'], None)
    """
    def on_log(client: mqtt.Client, userdata: object, level: int, text: str) -> None:
        if level == mqtt.MQTT_LOG_ERR and "_ssl.c" in text and then is not None:
            then(text.split(": ", 1)[-1])

    client.on_log = None if then is None else on_log


def broker_limits(properties: object) -> dict[str, int]:
    """What an MQTT 5 CONNACK says of the broker's settings: ``receive_maximum`` (Mosquitto's
    ``max_inflight_messages``) and ``maximum_packet_size``, where it says them.

    >>> from paho.mqtt.packettypes import PacketTypes
    >>> from paho.mqtt.properties import Properties
    >>> p = Properties(PacketTypes.CONNACK)
    >>> p.ReceiveMaximum = 20
    >>> broker_limits(p), broker_limits(None)
    ({'receive_maximum': 20}, {})
    """
    names = {"receive_maximum": "ReceiveMaximum", "maximum_packet_size": "MaximumPacketSize"}
    found = {key: getattr(properties, name, None) for key, name in names.items()}
    return {key: value for key, value in found.items() if isinstance(value, int)}


def _no_delay(client: mqtt.Client, userdata: object, sock: object) -> None:
    """Send small packets at once (TCP_NODELAY): with Nagle's algorithm, an update or a model
    written while an earlier packet is unacknowledged waits for the peer's delayed ACK (the
    broker sets it too: ``set_tcp_nodelay``). Measured with ``fleetlearn bench --scenario
    sync``, 8 learners: p50 88 ms with Nagle on both ends, 45 ms with it off here, 1.6 ms
    with it off on both (docs/benchmarks.md)."""
    with contextlib.suppress(AttributeError, OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]


#: The packets :class:`Wire` holds for the turn's one write: PUBLISH (3) and PUBACK (4).
_HELD = frozenset((3, 4))


class Wire:
    """``client``'s socket I/O without paho's ``loop()``, which writes each packet with a
    ``send()`` of its own and a byte to a wake-up socket pair (for a loop thread we do not
    have): two syscalls a message, and a TCP segment the broker handles alone. Here PUBLISH
    and PUBACK packets are held and written together at :meth:`write` (a node's turn's end);
    :meth:`loop` uses paho's external-loop calls (``loop_read``/``_write``/``_misc``). Other
    packets (CONNECT, SUBSCRIBE, PINGREQ, DISCONNECT) go out at once, after what is held.

    >>> wire = Wire(make_client("n", BrokerAddress()))
    >>> wire.held, wire.write(), wire.sends
    (0, <MQTTErrorCode.MQTT_ERR_NO_CONN: 4>, 0)
    >>> mine, broker = socket.socketpair()  # paho's reads of a packet: one recv serves them
    >>> wire.client._sock = mine; broker.sendall(b"\\x30\\x05\\x00\\x01tab")
    >>> wire._recv(1), wire.buffered, wire._recv(1), wire._recv(5), wire.buffered
    (b'0', 6, b'\\x05', b'\\x00\\x01tab', 0)
    >>> mine.close(); broker.close()
    """

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client
        self._held = bytearray()
        self._sock: object = None  # the socket the held bytes are for
        self.sends = 0  # socket writes made
        self.holding = False  # True: a node's turn; its packets wait for :meth:`write`
        self._in, self._at, self._rsock = b"", 0, None  # one recv's bytes, read up to _at
        client.on_socket_register_write = lambda *_: None  # queue; :meth:`write` writes
        client._sock_send = self._hold  # paho's one write a packet lands here
        client._sock_recv = self._recv  # and its 2-4 reads a packet are served from one

    @property
    def held(self) -> int:
        """Bytes held, not yet written to the socket."""
        return len(self._held)

    def _recv(self, size: int) -> bytes:
        """paho's read of ``size`` bytes (1, 1, then the rest, a packet), served from one
        ``recv`` of up to 64 KiB (a syscall a packet's part otherwise)."""
        sock = self.client.socket()
        if sock is not self._rsock:  # a new connection: nothing of the old one is read
            self._in, self._at, self._rsock = b"", 0, sock
        if self._at >= len(self._in):
            self._in, self._at = mqtt.Client._sock_recv(self.client, 65536), 0
            if not self._in:
                return self._in  # the broker closed the connection
        part = self._in[self._at:self._at + size]
        self._at += len(part)
        return part

    @property
    def buffered(self) -> int:
        """Bytes read from the socket that paho has not taken yet."""
        return len(self._in) - self._at

    def _hold(self, data: bytes | bytearray) -> int:
        sock = self.client.socket()
        if sock is None:
            raise ConnectionError("not connected")
        if sock is not self._sock:  # a new connection: nothing of the old one goes on it
            self._sock = sock
            self._held.clear()
        self._held += data
        if data and data[0] >> 4 not in _HELD:
            self._send()
        return len(data)

    def _send(self) -> None:
        """The held bytes to the socket, as far as it takes them now (the rest waits); a
        broken connection raises its OSError, and what was held is dropped."""
        while self._held:
            try:
                with memoryview(self._held) as view:
                    n = mqtt.Client._sock_send(self.client, view)  # paho's own (TLS too)
            except BlockingIOError:
                return
            except OSError:
                self._held.clear()
                raise
            self.sends += 1
            del self._held[:n]

    def open(self, broker: BrokerAddress, deadline: float) -> None:
        """Open the connection to ``broker`` (CONNECT queued), trying again until the
        ``deadline`` (``time.monotonic()``): :class:`~broker.address.BrokerUnreachable`; a TLS
        failure at once (:meth:`~broker.address.BrokerAddress.tls_failed`)."""
        while True:
            try:
                self.client.connect(broker.host, broker.port, keepalive=30)
                return
            except ssl.SSLError as exc:  # an OSError that waiting does not mend
                raise broker.tls_failed(exc) from None
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise broker.unreachable(exc) from None
                time.sleep(0.2)

    def reopen(self, broker: BrokerAddress) -> bool:
        """Try the lost connection again (CONNECT queued): True if the socket opened."""
        try:
            return self.client.reconnect() == mqtt.MQTT_ERR_SUCCESS
        except ssl.SSLError as exc:
            raise broker.tls_failed(exc) from None
        except OSError:
            return False

    def publish_now(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        """A QoS 0 PUBLISH (MQTT 3.1.1) put straight into what is held, after what paho
        queued, without paho's per-message objects (a message info with its lock, a queue
        entry, on a write a reason code and properties for the callback); False: not
        connected, MQTT 5, or a topic paho must judge; then paho publishes it."""
        client, data = self.client, topic.encode()
        sock = client.socket()
        if (sock is None or client.protocol != mqtt.MQTTv311 or not data or b"+" in data
                or b"#" in data or len(payload) > 268_435_000):
            return False
        if client.want_write():
            client.loop_write()
        if sock is not self._sock:
            self._sock = sock
            self._held.clear()
        size, held = 2 + len(data) + len(payload), self._held
        held.append(0x31 if retain else 0x30)
        while size > 127:
            held.append(size & 127 | 128)
            size >>= 7
        held.append(size)
        held += len(data).to_bytes(2, "big")
        held += data
        held += payload
        if not self.holding:
            self.write()
        return True

    def write(self) -> mqtt.MQTTErrorCode:
        """Every packet paho has queued, and what was held, to the socket."""
        rc = self.client.loop_write()
        if rc != mqtt.MQTT_ERR_SUCCESS or self._sock is not self.client.socket():
            return rc
        try:
            self._send()
        except OSError as exc:  # said as paho says it (on_tls_alert reads it); the next
            if self.client.on_log is not None:  # read finds the connection gone
                self.client.on_log(self.client, None, mqtt.MQTT_LOG_ERR,
                                   f"failed to send on socket: {exc}")
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)  # type: ignore[attr-defined]
            return mqtt.MQTT_ERR_CONN_LOST
        return rc

    def loop(self, timeout: float) -> mqtt.MQTTErrorCode:
        """paho's ``loop()``: write, wait up to ``timeout`` for the socket, read a packet,
        write, keepalive."""
        sock = self.client.socket()
        if sock is None:
            return mqtt.MQTT_ERR_NO_CONN
        rc = self.write()
        if rc != mqtt.MQTT_ERR_SUCCESS:
            return rc
        pending = self.buffered or (sock.pending() if isinstance(sock, ssl.SSLSocket) else 0)
        try:
            readable, _, _ = select.select([sock], [sock] if self._held else [], [],
                                           0.0 if pending else timeout)
        except (TypeError, ValueError):  # the socket is closed
            return mqtt.MQTT_ERR_CONN_LOST
        if readable or pending:
            rc = self.client.loop_read()
            if rc != mqtt.MQTT_ERR_SUCCESS or self.client.socket() is None:
                return rc
        rc = self.write()
        return rc if rc != mqtt.MQTT_ERR_SUCCESS else self.client.loop_misc()
