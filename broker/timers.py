"""Periodic tasks of a node's loop: each runs every so many seconds, from the loop's thread.

>>> timers = Timers()
>>> timers.every(1.0, print, now=0.0)
>>> timers.due(0.5), len(timers.due(1.0)), timers.due(1.5)
([], 1, [])
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Timers:
    """Tasks with their interval and next due time (monotonic seconds)."""

    def __init__(self) -> None:
        self._tasks: list[list] = []  # [interval, next_due, fn], in the order added

    def every(self, seconds: float, fn: Callable[[], None], now: float | None = None) -> None:
        """Run ``fn`` every ``seconds``, the first time ``seconds`` from ``now``."""
        start = time.monotonic() if now is None else now
        self._tasks.append([seconds, start + seconds, fn])

    def due(self, now: float) -> list[Callable[[], None]]:
        """The tasks due at ``now``, in the order added; each is due again an interval on."""
        ready = []
        for task in self._tasks:
            if now >= task[1]:
                task[1] = now + task[0]
                ready.append(task[2])
        return ready
