"""When a node tries its lost broker again, and when it gives up: pure (times are passed in).

A node's loop never blocks on a lost connection: each turn asks :class:`Backoff` whether an
attempt is due, so timers, the stop flag and a parent's death are honoured while it waits.

>>> b = Backoff(first=0.1, most=0.4, give_up_after=1.0)
>>> b.lost(10.0); b.due(10.0)       # the first attempt at once
True
>>> b.lost(10.0); b.due(10.05), b.due(10.1)   # it failed: the next in 0.1 s
(False, True)
>>> b.lost(10.1); b.lost(10.3); b.lost(10.7); b.next_try   # doubling up to 0.4 s
11.1
>>> b.failures, b.given_up(10.9), b.given_up(11.0)
(4, False, True)
>>> b.back(); b.down, b.given_up(99.0)
(False, False)
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def connect_timeout() -> float:
    """Seconds to wait for a broker: ``$FLEETLEARN_CONNECT_TIMEOUT``, else 10."""
    return float(os.environ.get("FLEETLEARN_CONNECT_TIMEOUT", "10"))


@dataclass
class Backoff:
    """Attempts after a lost connection: at once, then ``first`` seconds doubling to ``most``;
    given up ``give_up_after`` seconds after the loss (None: never)."""

    first: float = 0.1
    most: float = 5.0
    give_up_after: float | None = None
    lost_at: float | None = None
    next_try: float = 0.0
    delay: float = 0.1
    failures: int = 0  # attempts that failed since the loss

    @property
    def down(self) -> bool:
        """The connection is lost and not yet back."""
        return self.lost_at is not None

    def lost(self, now: float) -> None:
        """The connection was lost, or an attempt to get it back failed, at ``now``."""
        if self.lost_at is None:
            self.lost_at, self.delay, self.next_try, self.failures = now, self.first, now, 0
            return
        self.failures += 1
        self.next_try = now + self.delay
        self.delay = min(self.delay * 2, self.most)

    def due(self, now: float) -> bool:
        """Time for the next attempt."""
        return now >= self.next_try

    def given_up(self, now: float) -> bool:
        """Down for ``give_up_after`` seconds or more."""
        return (self.give_up_after is not None and self.lost_at is not None
                and now - self.lost_at >= self.give_up_after)

    def back(self) -> None:
        """The broker accepted us again."""
        self.lost_at = None
