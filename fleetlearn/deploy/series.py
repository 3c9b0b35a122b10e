"""Time series a watcher of a deployment keeps from the metrics it receives, for the plots.

Pure bookkeeping: each node's latest metrics arrive every report interval; this keeps, per
gateway and for the federated view, the prequential metrics at that moment, and the readings
published and learned so far (throughput is their slope). Each series is bounded: past
``limit`` points every second one is dropped, so a long run keeps its whole span at a coarser
step.

>>> s = Series(limit=4)
>>> s.on_metrics({"node": "gw-0", "kind": "gateway", "prequential": {"n": 3, "mae": 0.5}}, 1.0)
>>> s.on_metrics({"node": "aggregator", "kind": "aggregator", "federated": {"r2": 0.9}}, 1.5)
>>> s.on_metrics({"node": "fleet", "kind": "fleet", "published": 40}, 2.0)
>>> s.as_dict()["gateways"]["gw-0"], s.as_dict()["federated"], s.as_dict()["published"]
([[1.0, {'n': 3, 'mae': 0.5}]], [[1.5, {'r2': 0.9}]], [[2.0, 40]])
>>> for i in range(9):
...     s.on_metrics({"node": "fleet", "kind": "fleet", "published": i}, float(i))
>>> len(s.published) <= 4
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Each series' most points before it is thinned.
LIMIT = 2000


def _add(points: list[list[Any]], at: float, value: Any, limit: int) -> None:
    if points and points[-1][0] == at:
        points[-1][1] = value
        return
    points.append([round(at, 3), value])
    if len(points) > limit:
        del points[1::2]


@dataclass
class Series:
    limit: int = LIMIT
    gateways: dict[str, list[list[Any]]] = field(default_factory=dict)
    federated: list[list[Any]] = field(default_factory=list)
    published: list[list[Any]] = field(default_factory=list)
    learned: list[list[Any]] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)  # node -> its count of published
    learners: dict[str, int] = field(default_factory=dict)  # gateway -> its count of learned

    def on_metrics(self, metrics: dict[str, Any], at: float) -> None:
        """One node's metrics (already checked) received ``at`` seconds into the watch."""
        kind, node = metrics.get("kind"), metrics.get("node")
        if kind == "gateway":
            pq = metrics.get("prequential")
            if isinstance(pq, dict) and pq.get("n"):
                _add(self.gateways.setdefault(str(node), []), at, dict(pq), self.limit)
            if isinstance(metrics.get("learned"), int):
                self.learners[str(node)] = metrics["learned"]
                _add(self.learned, at, sum(self.learners.values()), self.limit)
        elif kind == "aggregator" and isinstance(metrics.get("federated"), dict):
            if metrics["federated"]:
                _add(self.federated, at, dict(metrics["federated"]), self.limit)
        elif kind in ("fleet", "replay") and isinstance(metrics.get("published"), int):
            self.sources[str(node)] = metrics["published"]
            _add(self.published, at, sum(self.sources.values()), self.limit)

    def as_dict(self) -> dict[str, Any]:
        return {"gateways": self.gateways, "federated": self.federated,
                "published": self.published, "learned": self.learned}
