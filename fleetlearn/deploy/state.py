"""What a watcher of a deployment knows: the latest metrics of every node and the model history.

Pure bookkeeping fed by the monitor; it turns into the live table and the final report.

>>> from devices.truth import GroundTruth
>>> state = DeploymentState(truth=GroundTruth({"a": 2.0}, 0.0, 0.1))
>>> state.on_metrics({"node": "fleet", "kind": "fleet", "published": 10})
>>> state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": 9, "rejected": {"schema": 1}})
>>> r = state.readings()
>>> r["published"], r["learned"], r["rejected"], r["not_taken_in"], r["unaccounted"]
(10, 9, {'schema': 1}, 0, 0)

With the nodes it started (``known``), metrics from any other node, under another node's
topic, of another kind or with counters that are not counts are ignored, and counted:

>>> state = DeploymentState(known={"gw-0": "gateway"})
>>> state.on_metrics({"node": "gw-9", "kind": "gateway", "learned": 5}, topic_node="gw-9")
>>> state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": -5}, topic_node="gw-0")
>>> dict(state.ignored), state.nodes
({'metrics_unknown_node': 1, 'metrics_bad_count': 1}, {})
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from broker.messages import Model
from broker.node_status import is_online
from devices.truth import GroundTruth, weight_error
from fleetlearn.deploy.series import Series

#: The counters :meth:`DeploymentState.readings` adds up: each must be a count (an int >= 0).
COUNTS = ("published", "unacked_readings", "learned", "received", "gaps", "expected_gaps",
          "send_buffer_full", "behind")

#: What the watcher keeps of a dead letter besides its reason and time.
LETTER = ("node", "detail", "topic")
#: Dead-letter reasons counted apart; any further one (off the wire: a publisher could make
#: up one a message) under ``OTHER_REASONS``.
MAX_REASONS = 64
OTHER_REASONS = "other_reasons"


def metrics_problem(metrics: dict[str, Any], topic_node: str | None,
                    known: dict[str, str] | None) -> str | None:
    """Why a metrics message is not one a node of this deployment counted itself, or None.

    >>> metrics_problem({"node": "gw-0", "kind": "gateway"}, "gw-1", None)
    'metrics_id_mismatch'
    >>> metrics_problem({"node": "aggregator", "kind": "fleet"}, None, {"aggregator": "aggregator"})
    'metrics_wrong_kind'
    >>> metrics_problem({"node": "fleet", "kind": "fleet", "published": 2**70}, "fleet", None)
    >>> metrics_problem({"node": "fleet", "kind": "fleet", "rejected": {"x": 1.5}}, None, None)
    'metrics_bad_count'
    """
    node, kind = metrics.get("node"), metrics.get("kind")
    if not isinstance(node, str):
        return "metrics_malformed"
    if topic_node is not None and node != topic_node:
        return "metrics_id_mismatch"
    if known is not None:
        if node not in known:
            return "metrics_unknown_node"
        if kind != known[node] and not (kind == "quality" and known[node] == "gateway"):
            return "metrics_wrong_kind"
    rejected = metrics.get("rejected", {})
    values = [metrics[k] for k in COUNTS if k in metrics]
    if not isinstance(rejected, dict):
        return "metrics_bad_count"
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
               for v in [*values, *rejected.values()]):
        return "metrics_bad_count"
    return None


@dataclass
class ModelSeen:
    version: int
    at: float  # seconds since the watch began
    weight_error: float | None
    n: int
    contributors: tuple[str, ...]
    ts: float = 0.0  # the aggregator's wall clock when it made the model
    weights: tuple[float, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict)


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
    known: dict[str, str] | None = None  # node id -> kind, of the nodes `up` started
    ignored: Counter[str] = field(default_factory=Counter)  # metrics messages, by reason
    series: Series = field(default_factory=Series)  # metrics over time, for the plots
    #: The last dead letters as they came (node, reason, detail, topic, ts), newest last.
    recent_deadletters: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=20))

    def on_metrics(self, metrics: dict[str, Any], topic_node: str | None = None,
                   at: float | None = None) -> None:
        """A node's own counters (``topic_node``: the node its topic names; ``at``: seconds
        into the watch, to keep them over time)."""
        problem = metrics_problem(metrics, topic_node, self.known)
        if problem is not None:
            self.ignored[problem] += 1
            return
        node = metrics["node"]
        if metrics.get("kind") == "quality":
            self.quality[node] = metrics.get("devices", {})
        else:
            self.nodes[node] = metrics
            if at is not None:
                self.series.on_metrics(metrics, at)

    def on_status(self, node: str, payload: bytes) -> None:
        self.online[node] = is_online(payload)

    def on_deadletter(self, reason: str, letter: dict[str, Any] | None = None) -> None:
        """One dead letter; ``letter``, its decoded message, is kept among the last ones (its
        text fields cut to 200 characters: it came off the wire). At most :data:`MAX_REASONS`
        reasons, each cut to 80 characters, are counted apart.

        >>> s = DeploymentState(); _ = [s.on_deadletter(f"x{i}") for i in range(MAX_REASONS + 5)]
        >>> len(s.deadletters), s.deadletters[OTHER_REASONS]
        (65, 5)
        """
        reason = reason[:80]
        if reason not in self.deadletters and len(self.deadletters) >= MAX_REASONS:
            reason = OTHER_REASONS
        self.deadletters[reason] += 1
        letter = letter or {}
        kept = {k: str(letter[k])[:200] for k in LETTER if k in letter}
        ts = letter.get("ts")
        kept["ts"] = float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else None
        self.recent_deadletters.append(kept | {"reason": reason[:200]})

    def on_model(self, model: Model, at: float) -> None:
        if any(seen.version == model.version and seen.ts == model.ts
               for seen in reversed(self.models)):
            return  # the retained copy of one we have (an older one after a broker restart)
        err = None
        truth = self.truth
        drift = self.drift()
        if drift is not None and model.ts >= drift[1]:
            truth = drift[0]  # the fleet has drifted: judge against the truth it follows now
        if truth is not None and set(model.params.features) <= set(truth.weights):
            err = weight_error(model.params.weights, truth, model.params.features)
        self.models.append(ModelSeen(model.version, at, err, model.n, model.contributors,
                                     model.ts, tuple(model.params.weights.tolist()),
                                     model.notes))
        self.last_model = model

    # ------------------------------------------------------------- views

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        return {n: m for n, m in sorted(self.nodes.items()) if m.get("kind") == kind}

    def readings(self) -> dict[str, Any]:
        """Where every reading published went: learned, rejected by reason, lost (gaps in
        what was published), or not taken in (yet) by a gateway; and what never was published.

        ``published`` = ``learned`` + rejected + ``lost`` + ``not_taken_in`` - ``surplus``.
        ``lost`` are the gaps the gateways saw beyond those the fault injector made on purpose
        (readings it never published). ``surplus`` is what the gateways took in beyond what
        was published: readings sent whose acknowledgement never came back
        (``unacknowledged``) can explain it. ``unaccounted`` is what nothing explains: the
        readings not taken in, and a surplus beyond the unacknowledged ones and the copies
        refused as ``duplicate`` or ``replay`` (a QoS 1 message the broker or the fleet sent
        again after a broken connection: the gateway refuses the second copy). Never published:
        ``send_buffer_full`` (due while the fleet's send buffer was full, so never sent) and
        ``behind`` (due by the fleet's rate, never made: it could not keep up).
        """
        sources = [*self.of_kind("fleet").values(), *self.of_kind("replay").values()]
        published = sum(m.get("published", 0) for m in sources)
        unacknowledged = sum(m.get("unacked_readings", 0) for m in sources)
        gateways = self.of_kind("gateway").values()
        learned = sum(m.get("learned", 0) for m in gateways)
        received = sum(m.get("received", 0) for m in gateways)
        rejected: Counter[str] = Counter()
        for m in gateways:
            rejected.update(m.get("rejected", {}))
        gaps = sum(m.get("gaps", 0) for m in gateways)
        lost = max(0, gaps - sum(m.get("expected_gaps", 0) for m in sources))
        taken_in = learned + sum(rejected.values()) + lost
        not_taken_in = max(0, published - taken_in)
        surplus = max(0, taken_in - published)
        copies = rejected.get("duplicate", 0) + rejected.get("replay", 0)
        return {
            "published": published,
            "published_means": "sent" if any(m.get("published_means") == "sent"
                                             for m in sources) else "acknowledged",
            "received": received, "learned": learned, "rejected": dict(rejected), "gaps": gaps,
            "lost": lost, "taken_in": taken_in, "not_taken_in": not_taken_in,
            "surplus": surplus, "unacknowledged": unacknowledged,
            "send_buffer_full": sum(m.get("send_buffer_full", 0) for m in sources),
            "behind": sum(m.get("behind", 0) for m in sources),
            "unaccounted": not_taken_in + max(0, surplus - unacknowledged - copies),
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

    def drift(self) -> tuple[GroundTruth, float] | None:
        """The truth the simulated fleet drifted to, and when (wall clock), once it has."""
        fleet = self.nodes.get("fleet", {})
        truth, at = fleet.get("truth"), fleet.get("drifted_at")
        if not fleet.get("drifted") or not isinstance(truth, dict) or at is None:
            return None
        return GroundTruth(truth["weights"], truth["intercept"], truth["noise_sd"],
                           truth["target"]), float(at)

    def seconds_to_recover(self, within: float = 0.10, stay: bool = True) -> float | None:
        """Seconds from the drift until the model came (and, with ``stay``, stayed) within
        ``within`` of the new truth; None without a drift, or if it never did."""
        drift = self.drift()
        if drift is None or self.last_model is None:
            return None
        truth, at = drift
        features = self.last_model.params.features
        first = None
        for seen in self.models:
            if seen.ts < at or not seen.weights:
                continue
            if weight_error(np.array(seen.weights), truth, features) <= within:
                first = seen.ts if first is None else first
                if not stay:
                    break
            else:
                first = None
        return None if first is None else first - at

    def model_summary(self) -> dict[str, Any]:
        model = self.last_model
        summary: dict[str, Any] = {
            "versions_seen": len(self.models),
            "first_version": self.models[0].version if self.models else None,
            "last_version": model.version if model else None,
            "strictly_increasing": self.versions_strictly_increase(),
            "seconds_to_within": self.seconds_to_within(),
            "within": self.within,
            "rollbacks": [m.notes["rollback"] | {"version": m.version} for m in self.models
                          if "rollback" in m.notes],
            "drift_reactions": [m.notes["drift"] | {"version": m.version} for m in self.models
                                if m.notes.get("drift", {}).get("policy") not in (None, "none")],
            "seconds_to_recover": self.seconds_to_recover(),
            "seconds_to_first_within_drifted": self.seconds_to_recover(stay=False),
            "history": [[m.version, round(m.at, 3), m.weight_error] for m in self.models],
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
