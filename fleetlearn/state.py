"""What a watcher of a deployment knows: the latest metrics of every node and the model history.

Pure bookkeeping fed by the monitor; it turns into the live table and the final report.

>>> from devices.truth import GroundTruth
>>> state = DeploymentState(truth=GroundTruth({"a": 2.0}, 0.0, 0.1))
>>> state.on_metrics({"node": "fleet", "kind": "fleet", "published": 10})
>>> state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": 9, "rejected": {"schema": 1}})
>>> state.readings()
{'published': 10, 'received': 0, 'learned': 9, 'rejected': {'schema': 1}, 'gaps': 0,
 'unaccounted': 0}
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from broker.codec import Model
from devices.truth import GroundTruth, weight_error


@dataclass
class ModelSeen:
    version: int
    at: float  # seconds since the watch began
    weight_error: float | None
    n: int
    contributors: tuple[str, ...]


@dataclass
class DeploymentState:
    truth: GroundTruth | None = None
    within: float = 0.05
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: list[ModelSeen] = field(default_factory=list)
    last_model: Model | None = None
    online: dict[str, bool] = field(default_factory=dict)
    deadletters: Counter[str] = field(default_factory=Counter)
    quality: dict[str, dict[str, Any]] = field(default_factory=dict)

    def on_metrics(self, metrics: dict[str, Any]) -> None:
        node = metrics.get("node")
        if not isinstance(node, str):
            return
        if metrics.get("kind") == "quality":
            self.quality[node] = metrics.get("devices", {})
        else:
            self.nodes[node] = metrics

    def on_status(self, node: str, payload: bytes) -> None:
        self.online[node] = payload == b"online"

    def on_deadletter(self, reason: str) -> None:
        self.deadletters[reason] += 1

    def on_model(self, model: Model, at: float) -> None:
        if self.last_model is not None and model.version == self.last_model.version:
            return  # the retained copy of one we already have
        err = None
        if self.truth is not None and set(model.params.features) <= set(self.truth.weights):
            err = weight_error(model.params.weights, self.truth, model.params.features)
        self.models.append(ModelSeen(model.version, at, err, model.n, model.contributors))
        self.last_model = model

    # ------------------------------------------------------------- views

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        return {n: m for n, m in sorted(self.nodes.items()) if m.get("kind") == kind}

    def readings(self) -> dict[str, Any]:
        """Readings published, learned and rejected, and how many are not accounted for."""
        sources = [*self.of_kind("fleet").values(), *self.of_kind("replay").values()]
        published = sum(m.get("published", 0) for m in sources)
        gateways = self.of_kind("gateway").values()
        learned = sum(m.get("learned", 0) for m in gateways)
        received = sum(m.get("received", 0) for m in gateways)
        rejected: Counter[str] = Counter()
        for m in gateways:
            rejected.update(m.get("rejected", {}))
        return {
            "published": published, "received": received, "learned": learned,
            "rejected": dict(rejected), "gaps": sum(m.get("gaps", 0) for m in gateways),
            "unaccounted": published - learned - sum(rejected.values()),
        }

    def ground_truth_check(self) -> dict[str, Any] | None:
        """The gateways' accounting against the fleet's log of injected faults, if it has one."""
        fleets = [m for m in self.of_kind("fleet").values() if "expected" in m]
        if not fleets:
            return None
        expected: Counter[str] = Counter()
        for m in fleets:
            expected.update(m["expected"])
        readings = self.readings()
        observed = Counter(readings["rejected"])
        observed["admitted"] = readings["learned"]
        expected_gaps = sum(m.get("expected_gaps", 0) for m in fleets)
        wrong = {k: {"expected": expected.get(k, 0), "observed": observed.get(k, 0)}
                 for k in sorted(set(expected) | set(observed))
                 if expected.get(k, 0) != observed.get(k, 0)}
        return {
            "expected": dict(expected), "expected_gaps": expected_gaps,
            "observed_gaps": readings["gaps"], "differences": wrong,
            "matches": not wrong and expected_gaps == readings["gaps"],
        }

    def versions_strictly_increase(self) -> bool:
        versions = [m.version for m in self.models]
        return all(a < b for a, b in itertools.pairwise(versions))

    def seconds_to_within(self) -> float | None:
        """When the model first came within ``within`` of the ground truth (and stayed so)."""
        first = None
        for seen in self.models:
            if seen.weight_error is not None and seen.weight_error <= self.within:
                first = seen.at if first is None else first
            else:
                first = None
        return first

    def model_summary(self) -> dict[str, Any]:
        model = self.last_model
        summary: dict[str, Any] = {
            "versions_seen": len(self.models),
            "first_version": self.models[0].version if self.models else None,
            "last_version": model.version if model else None,
            "strictly_increasing": self.versions_strictly_increase(),
            "seconds_to_within": self.seconds_to_within(),
            "within": self.within,
        }
        if model is not None:
            summary.update({
                "features": list(model.params.features),
                "weights": dict(zip(model.params.features, model.params.weights.tolist(),
                                    strict=True)),
                "intercept": model.params.intercept,
                "samples": model.n,
                "weight_error": self.models[-1].weight_error,
            })
        return summary
