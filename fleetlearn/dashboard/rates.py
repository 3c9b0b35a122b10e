"""Rates per second from running totals, over a sliding window of seconds.

Pure: it is told the totals (readings published, learned, ...) at moments, and gives how fast
each grew over the last ``window`` seconds. A total that goes down (a node restarted and counts
from zero again) counts as no growth, never as a negative rate.

>>> r = Rates(window=5.0)
>>> r.observe(0.0, {"learned": 0, "predictions": 0})
>>> r.per_second()
{'learned': 0.0, 'predictions': 0.0}
>>> r.observe(2.0, {"learned": 100, "predictions": 40})
>>> r.per_second()
{'learned': 50.0, 'predictions': 20.0}
>>> r.observe(10.0, {"learned": 180, "predictions": 10})  # the window moved on
>>> r.per_second()
{'learned': 10.0, 'predictions': 0.0}
"""

from __future__ import annotations

from collections import deque


class Rates:
    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._seen: deque[tuple[float, dict[str, int]]] = deque()

    def observe(self, at: float, totals: dict[str, int]) -> None:
        """The totals at ``at`` seconds (a clock that only goes forward)."""
        self._seen.append((at, dict(totals)))
        # keep one moment at or before the window's start, to measure the whole window
        while len(self._seen) > 2 and self._seen[1][0] <= at - self.window:
            self._seen.popleft()

    def per_second(self) -> dict[str, float]:
        """Each total's growth per second over the window (0.0 until two moments are seen)."""
        if not self._seen:
            return {}
        (t0, first), (t1, last) = self._seen[0], self._seen[-1]
        span = t1 - t0
        return {name: max(0, value - first.get(name, 0)) / span if span > 0 else 0.0
                for name, value in last.items()}
