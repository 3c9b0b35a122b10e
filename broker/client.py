"""The node loop: the one place that drives paho clients (built by :mod:`broker.client_factory`).

Every fleetlearn process is a :class:`Node`: one paho client (a unique id, or a kept session's
stable one; a retained last will), subscribing in ``on_connect`` (again after a reconnect),
driven from one thread. paho's callbacks only hand messages to an inbox (:mod:`broker.inbox`);
the node's loop calls the handler, so one bad message is caught and counted, and never kills
the loop. Nothing else touches the paho object: what a tool needs is a method (:meth:`pump`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from socket import socket as Socket

import paho.mqtt.client as mqtt

from broker.address import BrokerAddress, BrokerRefused, BrokerUnreachable
from broker.backoff import Backoff, connect_timeout
from broker.client_factory import Session, Wire, broker_limits, make_client, on_tls_alert
from broker.inbox import ErrorHandler, Handler, Inbox
from broker.node_status import OFFLINE, status
from broker.timers import Timers

__all__ = ["BURST", "ErrorHandler", "Handler", "Node"]

log = logging.getLogger(__name__)

#: Most packets one turn reads after paho's ``loop()`` before it handles them.
BURST = 1000


class Node:
    """A connected process: one client, one thread, handlers and periodic tasks.

    ``handler(topic, payload)`` is called for every message in arrival order; exceptions it
    raises go to ``on_error`` and the loop carries on. ``on_drained()`` is called once after
    each turn's messages were handled (the place for per-block work, e.g. learning a block);
    then a kept session acknowledges them. A lost broker is tried again from the loop
    (:class:`~broker.backoff.Backoff`), never blocking it; after ``give_up_after`` seconds
    down, :meth:`poll` raises :class:`BrokerUnreachable`; a broker that says no (credentials,
    TLS), :class:`BrokerRefused`, at once."""

    def __init__(self, node_id: str, broker: BrokerAddress, *,
                 subscriptions: list[tuple[str, int]] | None = None,
                 handler: Handler | None = None, on_error: ErrorHandler | None = None,
                 status_topic: str | None = None, on_drained: Callable[[], None] | None = None,
                 give_up_after: float | None = None, session: Session | None = None) -> None:
        self.node_id = node_id
        self.broker = broker
        self.subscriptions = list(subscriptions or [])
        self.handler, self.on_error = handler, on_error
        self.status_topic, self.on_drained = status_topic, on_drained
        self._detail: tuple[str, ...] = ()  # what the status says beyond ``online``
        if session is not None:
            session.check(self.subscriptions)
        self._client = make_client(node_id, broker, will_topic=status_topic, session=session)
        self._wire = Wire(self._client)  # the turn's packets in one write, no paho loop()
        self.log = log.getChild(node_id)  # a caller may quieten one node (``up``'s monitor)
        self._inbox = Inbox(node_id, self.log)
        self._waiting = self._inbox.waiting  # paho's callbacks append (topic, payload, mid)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = (self._on_message_owed if session and session.acks_when_done
                                   else self._on_message)
        self._client.on_publish = self._on_publish
        self._client.on_subscribe = self._on_subscribe
        self._timers = Timers()
        self._stop, self._connected = threading.Event(), False
        self.backoff = Backoff(give_up_after=give_up_after)
        self._lost = False  # the socket is gone: attempts to get it back, not loop()
        self._unacked: set[int] = set()
        self._on_ack: dict[int, Callable[[], None]] = {}
        self._acked: deque[Callable[[], None]] = deque()
        self._unsubacked: set[int] = set()
        self.connections = self.handler_errors = 0
        self.broker_limits: dict[str, int] = {}  # what the CONNACK says (MQTT 5 only)
        self._refused: BrokerRefused | None = None  # the broker said no (credentials, TLS)

    # --------------------------------------------------------- paho callbacks: hand off only

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:  # raised from the loop, once: retrying would not help
            self._refused = self.broker.refused(str(reason_code))
            return
        self._connected = True
        self.backoff.back()
        self.connections += 1
        self.broker_limits = broker_limits(properties)
        for topic, qos in self.subscriptions:
            _, mid = client.subscribe(topic, qos)
            self._unsubacked.add(mid)
        log.info("%s: %sconnected to %s; subscribing to %s", self.node_id, "re" * (
            self.connections > 1), self.broker, [t for t, _ in self.subscriptions])
        if self.status_topic is not None:
            self.publish(self.status_topic, status(True, self._detail), qos=1, retain=True)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self._unsubacked.discard(mid)
        for code in reason_codes:
            if code.is_failure:
                self.log.error("%s: the broker refused a subscription: %s", self.node_id, code)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected = False

    def _on_message(self, client, userdata, message) -> None:
        self._waiting.append((message.topic, message.payload, 0))  # paho acks it on return

    def _on_message_owed(self, client, userdata, message) -> None:  # a kept session's
        self._waiting.append((message.topic, message.payload, message.mid if message.qos else 0))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._unacked.discard(mid)
        then = self._on_ack.pop(mid, None)
        if then is not None:
            self._acked.append(then)  # run from the loop, not inside paho's callback

    # --------------------------------------------------------- the service's side

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                on_ack: Callable[[], None] | None = None) -> None:
        """Queue a message; QoS 1 ones count as unacked until the broker confirms them, and
        then ``on_ack`` runs (from the node's loop)."""
        if not qos and self._wire.publish_now(topic, payload, retain):
            return
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if not self._wire.holding:  # outside a turn: out now, as paho would
            self._wire.write()
        if qos and info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self._unacked.add(info.mid)
            if on_ack is not None:
                self._on_ack[info.mid] = on_ack

    unacked = property(lambda self: len(self._unacked), doc="QoS 1 messages not yet acked.")
    writes = property(lambda self: self._wire.sends, doc="Socket writes (a turn's: one).")

    def say(self, *detail: str) -> None:
        """What the retained status says after ``online`` (:mod:`broker.node_status`, e.g.
        ``behind``; none: plain ``online``), published when it changes and on each connect."""
        if detail != self._detail:
            self._detail = detail
            if self._connected and self.status_topic is not None:
                self.publish(self.status_topic, status(True, detail), qos=1, retain=True)

    @property
    def delivered(self) -> bool:
        """Everything sent is out: no QoS 1 message unacknowledged, no byte waiting to be
        written to the socket (for QoS 0, written is as far as delivery goes)."""
        return not self._unacked and not self._client.want_write() and not self._wire.held

    connected = property(lambda self: self._client.is_connected(),
                         doc="The client holds a connection the broker accepted.")

    def socket(self) -> Socket | None:
        """The connection's socket (to wait on with ``select``), or None when not connected."""
        return sock if isinstance(sock := self._client.socket(), Socket) else None

    def every(self, seconds: float, fn: Callable[[], None]) -> None:
        self._timers.every(seconds, fn)  # ``fn`` from the node's loop every ``seconds``

    def stop(self) -> None:
        self._stop.set()  # the loop finishes (safe from signal handlers and other threads)

    stopping = property(lambda self: self._stop.is_set(), doc="stop() was called.")

    # --------------------------------------------------------- the loop

    def connect(self, timeout: float | None = None) -> None:
        """Connect and wait for CONNACK and every SUBACK, or raise :class:`BrokerUnreachable`
        (the default timeout is ``$FLEETLEARN_CONNECT_TIMEOUT`` seconds, else 10), or at once
        :class:`BrokerRefused` (bad credentials, not authorised, TLS failure)."""
        deadline = time.monotonic() + (connect_timeout() if timeout is None else timeout)
        on_tls_alert(self._client, lambda text: setattr(self, "_refused",
                                                         self.broker.tls_failed(text)))
        self._wire.open(self.broker, deadline)
        while not self._connected or self._unsubacked:
            self._wire.loop(0.1)
            if self._refused is not None:
                raise self._refused
            if time.monotonic() > deadline:
                raise self.broker.unreachable()
        on_tls_alert(self._client, None)

    def pump(self, timeout: float = 0.0) -> bool:
        """Network I/O only (no handler, timer or reconnect) within ``timeout`` seconds, for a
        tight publishing loop (a service's loop calls :meth:`poll`); True while connected."""
        return self._wire.loop(timeout) == mqtt.MQTT_ERR_SUCCESS

    def poll(self, timeout: float = 0.01) -> None:
        """One turn: network I/O (or an attempt to get a lost broker back), then handle every
        message that came in, then due timers."""
        if self._refused is not None:  # CONNACK said no after a reconnect
            raise self._refused
        self._wire.holding = True  # what the turn sends goes out at its end, in one write
        try:
            if self._lost:
                self._reconnect(timeout)
            elif self._wire.loop(timeout) != mqtt.MQTT_ERR_SUCCESS:
                self._connected, self._lost = False, True
                self.backoff.lost(time.monotonic())
            else:
                self._read_burst()
            self._run_acked()
            self._drain()
            for task in self._timers.due(time.monotonic()):
                self._guarded(task, "a periodic task")
        finally:
            self._wire.holding = False
            self._wire.write()

    def _read_burst(self) -> None:
        """Read on while messages keep arriving, up to :data:`BURST` (paho's ``loop()`` reads
        one packet a call), so the drain handles a block; stop at a read that brings none."""
        inbox, client = self._waiting, self._client
        for _ in range(BURST):
            before = len(inbox)
            if client.loop_read() != mqtt.MQTT_ERR_SUCCESS or (
                    len(inbox) == before and not self._wire.buffered):
                return

    def run(self, on_stop: Callable[[], None] | None = None,
            companions: Sequence[Node] = ()) -> None:
        """Loop until :meth:`stop`; then ``on_stop``, say offline, flush and disconnect.
        ``companions``: further nodes of this process, driven from this thread (a gateway's
        model traffic has a connection of its own, so a backlog of readings never delays it)."""
        try:
            while not self._stop.is_set():
                for other in companions:
                    other.poll(0)
                self.poll()
        finally:
            if on_stop is not None:
                on_stop()
            for other in companions:
                other.close()
            self.close()

    def close(self, flush_timeout: float = 5.0) -> None:
        if self.status_topic is not None and self._connected:
            self.publish(self.status_topic, OFFLINE, qos=1, retain=True)
        self.flush(flush_timeout)
        self._client.disconnect()
        self._wire.loop(0.05)

    def flush(self, timeout: float = 5.0) -> bool:
        """Run the network until every QoS 1 message is acknowledged and every byte written
        (or the timeout), then the work that waited for those acknowledgements (``on_ack``)."""
        end = time.monotonic() + timeout
        while (self._unacked or self._wire.held) and self._connected and time.monotonic() < end:
            self._wire.loop(0.05)
        self._run_acked()
        return not self._unacked

    def _run_acked(self) -> None:
        """The work that waited for the broker to acknowledge a message (``on_ack``)."""
        while self._acked:
            self._guarded(self._acked.popleft(), "an acknowledgement task")

    def _guarded(self, fn: Callable[[], None], what: str) -> None:
        """Run ``fn``; an exception is logged and counted, and the loop carries on."""
        try:
            fn()
        except Exception:
            self.handler_errors += 1
            self.log.exception("%s: %s failed", self.node_id, what)

    def _drain(self) -> None:
        """Handle every message in the inbox in order; then ``on_drained`` once, if any came;
        then acknowledge a kept session's QoS 1 ones, in order (what a stop leaves in the
        inbox is not: the broker redelivers it to the next session)."""
        if not self._waiting:
            return
        self.handler_errors += self._inbox.handle_all(self.handler, self.on_error)  # type: ignore
        if self.on_drained is not None:
            self._guarded(self.on_drained, "the work after a drain")
        ack = self._client.ack
        for mid in self._inbox.owed():
            ack(mid, 1)

    def _reconnect(self, timeout: float) -> None:
        """Try the lost broker again if due, else wait (a stop wakes it); ``on_connect``
        subscribes again."""
        now = time.monotonic()
        if self.backoff.given_up(now):
            raise BrokerUnreachable(f"lost the broker at {self.broker} and could not get back "
                                    f"in {self.backoff.give_up_after:g} s")
        if not self.backoff.due(now):
            self._stop.wait(min(timeout, self.backoff.next_try - now))
            return
        if self._wire.reopen(self.broker):
            self._lost = False  # CONNACK to come: ``on_connect`` stops the give-up clock
            return
        self.backoff.lost(time.monotonic())  # said once a loss; each retry for debugging
        self.log.log(logging.WARNING if self.backoff.failures == 1 else logging.DEBUG,
                     "%s: broker unreachable, retrying (next in %.1fs)", self.node_id,
                     self.backoff.next_try - now)
