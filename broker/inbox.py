"""A node's inbox: the messages paho handed over, handled in arrival order on the node's turn,
and the QoS 1 acknowledgements owed for those whose work is done.

Pure (no paho): :mod:`broker.client` appends what paho reads to :attr:`Inbox.waiting` as
``(topic, payload, mid)``, and acknowledges what :meth:`Inbox.owed` gives once the turn's work
(the handlers, then ``on_drained``) is over. A message with ``mid`` 0 is owed nothing (QoS 0,
or a node whose client acknowledges a message as it reads it).

>>> import logging
>>> inbox, seen = Inbox("n1", logging.getLogger("demo")), []
>>> inbox.waiting.extend([("a", b"1", 7), ("b", b"2", 0), ("c", b"3", 8)])
>>> inbox.handle_all(lambda topic, payload: seen.append(topic), None)
0
>>> seen, inbox.owed(), inbox.owed()
(['a', 'b', 'c'], [7, 8], [])
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

__all__ = ["ErrorHandler", "Handler", "Inbox"]

Handler = Callable[[str, bytes], None]
ErrorHandler = Callable[[str, bytes, BaseException], None]


class Inbox:
    """Messages waiting for the node's turn, ``(topic, payload, mid)``, and the mids owed an
    acknowledgement, in the order the messages arrived (MQTT 3.1.1, 4.6: a client sends its
    PUBACKs in the order the PUBLISH packets came)."""

    __slots__ = ("_owed", "log", "node_id", "waiting")

    def __init__(self, node_id: str, log: logging.Logger) -> None:
        self.waiting: deque[tuple[str, bytes, int]] = deque()
        self._owed: list[int] = []
        self.node_id, self.log = node_id, log

    def __len__(self) -> int:
        return len(self.waiting)

    def handle_all(self, handler: Handler, on_error: ErrorHandler | None) -> int:
        """Call ``handler(topic, payload)`` for every waiting message in order; one that raises
        is logged and handed to ``on_error`` (the service counts or dead-letters it), and the
        rest are handled all the same. Every message taken out is owed its acknowledgement,
        also when its handler raised: its work ended there. Returns how many raised."""
        waiting, owed = self.waiting, self._owed
        failed = 0
        while waiting:
            topic, payload, mid = waiting.popleft()
            if mid:
                owed.append(mid)
            try:
                handler(topic, payload)
            except Exception as exc:  # one bad message must never kill the loop
                failed += 1
                self.log.exception("%s: handling a message on %s failed", self.node_id, topic)
                if on_error is not None:
                    on_error(topic, payload, exc)
        return failed

    def owed(self) -> list[int]:
        """The mids of the handled messages not acknowledged yet, in arrival order; they are
        no longer owed once given (the caller acknowledges them)."""
        owed, self._owed = self._owed, []
        return owed
