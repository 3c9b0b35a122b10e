"""A latency histogram a node keeps and carries in its metrics: fixed bucket bounds (seconds),
cumulative counts, their sum and count, as a Prometheus histogram wants them (each bucket
counts the observations at most its bound; the last, ``+Inf``, is ``count``).

Pure, and cheap per observation: a block of latencies costs one ``searchsorted`` and one
``bincount``. A negative latency (a clock a little ahead) counts as 0.

>>> h = LatencyHistogram()
>>> h.observe(0.003)
>>> h.observe_many([0.02, 7.0, -0.5])
>>> d = h.as_dict()
>>> d["count"], round(d["sum"], 3), d["le"][:4], d["buckets"][:4]
(4, 7.023, [0.001, 0.0025, 0.005, 0.01], [1, 1, 2, 2])
>>> d["buckets"][-1] <= d["count"]
True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

#: Upper bounds of the buckets, in seconds: 1 ms (a sync on one machine) to 30 s (a stalled one).
BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BOUNDS = np.array(BOUNDS)


class LatencyHistogram:
    """Counts of latencies per bucket of :data:`BOUNDS`, and their sum."""

    def __init__(self) -> None:
        self._counts = np.zeros(len(BOUNDS) + 1, dtype=np.int64)  # the last: beyond every bound
        self._sum = 0.0
        self._since: float | None = None

    def start(self, now: float) -> None:
        """A span begins at ``now``, unless one is open (its first start counts).

        >>> h = LatencyHistogram(); h.start(1.0); h.start(2.0); h.stop(4.5); h.stop(9.0)
        >>> h.as_dict()["count"], h.as_dict()["sum"]
        (1, 3.5)
        """
        if self._since is None:
            self._since = now

    def stop(self, now: float) -> None:
        """The open span (if any) ends at ``now``: observed."""
        if self._since is not None:
            self.observe(now - self._since)
            self._since = None

    def observe(self, seconds: float) -> None:
        self.observe_many((seconds,))

    def observe_many(self, seconds: Iterable[float] | np.ndarray) -> None:
        values = np.maximum(np.asarray(seconds, dtype=np.float64).ravel(), 0.0)
        if not len(values):
            return
        where = np.searchsorted(_BOUNDS, values, side="left")  # first bound >= value
        self._counts += np.bincount(where, minlength=len(self._counts))
        self._sum += float(values.sum())

    def as_dict(self) -> dict[str, Any]:
        """``le`` (the bounds), ``buckets`` (cumulative counts at each), ``count``, ``sum``."""
        cumulative = np.cumsum(self._counts)
        return {"le": list(BOUNDS), "buckets": cumulative[:-1].tolist(),
                "count": int(cumulative[-1]), "sum": self._sum}
