"""The shell every fleetlearn service shares: its node, its metrics, its dead letters, run/stop.

A service (gateway, aggregator, predictor, fleet, replay) subclasses :class:`Service` and
provides what is its own: the subscriptions and periodic tasks it passes up, :meth:`~Service.
handle` for its messages, :meth:`~Service.counters` for its metrics, and the hooks
:meth:`~Service.connect` (what to do around connecting) and :meth:`~Service.on_stop` (the last
work before the node says offline). The shell owns the rest, the same for all five:

- one :class:`~broker.client.Node` with the retained status ``{p}/learn/status/{node}`` and the
  service's own companion connections (:attr:`Service.companions`), driven from one thread;
- the metrics: every ``metrics_interval`` seconds, ``{"node", "kind", "ts", "rss_bytes",
  **counters()}`` as JSON on ``{p}/metrics/{node}`` (and once more on stop), each also handed
  to :attr:`Service.on_metrics` if set (a ``/metrics`` endpoint keeps the latest);
- dead letters: ``{"node", "reason", "detail", "topic", "excerpt", "ts"}`` on
  ``{p}/deadletter/{node}``;
- :meth:`~Service.run` (connect, SIGTERM/SIGINT handlers, loop until stopped) and
  :meth:`~Service.stop` (safe from signal handlers and other threads);
- with ``kept_session`` (gateway, aggregator, predictor), a persistent MQTT session under a
  stable client id, so what the broker queued while the node was away comes when it is back,
  and one live process per node id (``broker/presence.py``): a second one refuses to start
  with :class:`~broker.presence.NodeConflict`, and a running one that sees a newer claim on its
  id stops and raises it from :meth:`~Service.loop`.

>>> from broker.address import BrokerAddress
>>> class Echo(Service):
...     kind = "echo"
...     def counters(self):
...         return {"seen": 0}
>>> echo = Echo("e1", Topics("demo"), BrokerAddress(), metrics_interval=5.0)
>>> sorted(echo.metrics()), echo.metrics()["kind"]
(['kind', 'node', 'rss_bytes', 'seen', 'ts'], 'echo')
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from broker.address import BrokerAddress
from broker.client import Node
from broker.client_factory import Session, session_id
from broker.presence import Claim, NodeConflict, check_free, config_warning, conflict_message
from broker.topics import Topics
from broker.wire import encode_json, excerpt

log = logging.getLogger(__name__)

#: A periodic task: (seconds, function), called from the node's loop.
Task = tuple[float, Callable[[], None]]


def resident_bytes() -> int | None:
    """This process's resident memory (``/proc/self/statm``), or None where there is none."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class Service:
    """One service process's shell; subclasses set :attr:`kind` and provide the rest."""

    #: The ``kind`` in the service's metrics.
    kind: ClassVar[str] = "service"

    def __init__(self, node_id: str, topics: Topics, broker: BrokerAddress, *,
                 metrics_interval: float, subscriptions: Sequence[tuple[str, int]] = (),
                 tasks: Sequence[Task] = (),
                 on_drained: Callable[[], None] | None = None,
                 kept_session: bool = False, max_inflight: int = 100) -> None:
        """Make the node; ``tasks`` run every so many seconds, before the metrics when both
        are due in the same turn; ``kept_session``: see the module's doc; ``max_inflight``:
        that of a kept session (:class:`~broker.client_factory.Session`)."""
        self.node_id = node_id
        self.topics = topics
        self.broker = broker
        subs, session, handler = list(subscriptions), None, self.handle
        #: This process's hold on its node id (None: a clean session, no check).
        self.claim = Claim.new() if kept_session else None
        self.conflict = False
        self._ping, self._claim = topics.ping(node_id), topics.claim(node_id)
        if kept_session:
            subs += [(self._ping, 1), (self._claim, 1)]
            session = Session(kept_id=session_id(topics.prefix, node_id, subs),
                              max_inflight=max_inflight)
            handler = self._dispatch
        self.node = Node(node_id, broker, subscriptions=subs, handler=handler,
                         on_error=self.handle_error, status_topic=topics.node_status(node_id),
                         on_drained=on_drained, session=session)
        #: Further nodes of this process, connected first and driven from the same thread.
        self.companions: list[Node] = []
        #: Called with each metrics message as it is published (from the node's thread).
        self.on_metrics: Callable[[dict[str, Any]], None] | None = None
        for seconds, fn in tasks:
            self.node.every(seconds, fn)
        self.node.every(metrics_interval, self.publish_metrics)

    # ------------------------------------------------------------------ what a service provides

    def handle(self, topic: str, payload: bytes) -> None:
        """One message on a subscription (a service that subscribes overrides this)."""
        raise NotImplementedError(f"{type(self).__name__} subscribes to nothing")

    def handle_error(self, topic: str, payload: bytes, exc: BaseException) -> None:
        """:meth:`handle` raised: the node has logged and counted it; the service may say more
        (e.g. dead-letter it as ``internal_error``)."""

    def counters(self) -> dict[str, Any]:
        """The service's own figures, after ``node``, ``kind`` and ``ts`` in its metrics."""
        return {}

    def on_stop(self) -> None:
        """The last work once the loop has ended, before the node says offline: by default,
        the final metrics."""
        self.publish_metrics()

    # ------------------------------------------------------------------ what the shell does

    def metrics(self) -> dict[str, Any]:
        """This service's metrics message, as a dict."""
        return {"node": self.node_id, "kind": self.kind, "ts": time.time(),
                "rss_bytes": resident_bytes(), **self.counters()}

    def publish_metrics(self, qos: int = 0) -> None:
        metrics = self.metrics()
        self.node.publish(self.topics.metrics(self.node_id), encode_json(metrics), qos=qos)
        if self.on_metrics is not None:
            self.on_metrics(metrics)

    def dead_letter(self, topic: str, payload: bytes, reason: str, detail: str) -> None:
        """Publish what was refused (an excerpt of it) with the reason, on the dead-letter topic."""
        self.node.publish(self.topics.deadletter(self.node_id), encode_json({
            "node": self.node_id, "reason": reason, "detail": detail,
            "topic": topic, "excerpt": excerpt(payload), "ts": time.time(),
        }))

    def _dispatch(self, topic: str, payload: bytes) -> None:
        """A kept session's messages: a ping is answered with our claim, a newer claim than
        ours stops us, the rest is the service's."""
        if topic == self._ping:
            self.node.publish(self._claim, self.claim.encode(), qos=1)
        elif topic == self._claim:
            other = Claim.decode(payload)
            if other is not None and other > self.claim:
                log.error("%s: %s; stopping", self.node_id, conflict_message(self.node_id))
                self.conflict = True
                self.node.status_topic = None  # its status is the other's now
                self.node.stop()
        else:
            self.handle(topic, payload)

    def connect(self) -> None:
        """Connect the companions, then the node (a service adds what goes around it); a
        node with a kept session first makes sure no live process holds its id."""
        if self.claim is not None:
            limits = check_free(self.node_id, self.topics, self.broker, self.claim)
            warning = config_warning(limits)
            if warning is not None:
                log.warning("%s: %s", self.node_id, warning)
        for other in self.companions:
            other.connect()
        self.node.connect()

    def loop(self) -> None:
        """Drive the node (and companions) until :meth:`stop`; then :meth:`on_stop`, offline,
        flush and disconnect."""
        self.node.run(on_stop=self.on_stop, companions=self.companions)
        if self.conflict:
            raise NodeConflict(conflict_message(self.node_id))

    def run(self) -> None:
        """The process's life: connect, stop cleanly on SIGTERM or SIGINT, loop until stopped."""
        self.connect()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())
        self.loop()

    def stop(self) -> None:
        """Ask the loop to finish (safe from signal handlers and other threads)."""
        self.node.stop()
