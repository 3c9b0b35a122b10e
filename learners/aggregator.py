"""The aggregator process: learner updates in, versioned models out (retained, QoS 1).

It merges the updates built on the current version once ``quorum`` of them are in, or
``round_timeout`` seconds after the first one arrived; refused updates are counted and
dead-lettered. A retained model it finds at start sets the version it goes on from.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from broker.client import BrokerAddress, Node
from broker.codec import (
    MAX_PAYLOAD_BYTES,
    DecodeError,
    Model,
    decode_model,
    decode_update,
    encode_json,
    encode_model,
    excerpt,
)
from broker.topics import Topics
from learners.aggregate import AggregationError
from learners.rounds import ACCEPTED, SyncRounds
from learners.stats import merge


@dataclass(frozen=True)
class AggregatorConfig:
    node_id: str = "aggregator"
    quorum: int = 1
    round_timeout: float = 2.0
    metrics_interval: float = 1.0
    max_payload: int = MAX_PAYLOAD_BYTES


class Aggregator:
    def __init__(self, config: AggregatorConfig, topics: Topics, broker: BrokerAddress) -> None:
        self.config = config
        self.topics = topics
        self.rounds = SyncRounds(quorum=config.quorum, round_timeout=config.round_timeout)
        self.model: Model | None = None
        self.refused: Counter[str] = Counter()
        self.accepted = 0
        self.learner_metrics: dict[str, dict[str, float]] = {}
        self.target = ""
        self.node = Node(
            config.node_id, broker,
            subscriptions=[(topics.updates_filter, 1), (topics.model, 1)],
            handler=self.handle,
            on_error=lambda t, p, e: self.refuse(t, p, "internal_error", repr(e)),
            status_topic=topics.node_status(config.node_id),
        )
        self.node.every(0.05, self.merge_if_ready)
        self.node.every(config.metrics_interval, self.publish_metrics)

    def handle(self, topic: str, payload: bytes) -> None:
        if topic == self.topics.model:
            self.resume_from(payload)
            return
        try:
            update = decode_update(payload, self.config.max_payload)
        except DecodeError as exc:
            self.refuse(topic, payload, exc.reason, str(exc))
            return
        if update.learner != self.topics.last_level(topic):
            self.refuse(topic, payload, "id_mismatch", "learner id differs from its topic")
            return
        verdict = self.rounds.offer(update, time.monotonic())
        if verdict != ACCEPTED:
            self.refuse(topic, payload, verdict, f"base_version {update.base_version}, "
                        f"current {self.rounds.version}, seq {update.seq}")
            return
        self.accepted += 1
        self.learner_metrics[update.learner] = update.metrics
        self.target = update.target
        self.merge_if_ready()

    def resume_from(self, payload: bytes) -> None:
        """A retained model newer than ours (an earlier run's) sets our version."""
        try:
            model = decode_model(payload, self.config.max_payload)
        except DecodeError as exc:
            self.refuse(self.topics.model, payload, f"model_{exc.reason}", str(exc))
            return
        if model.version > self.rounds.version:
            self.rounds.version = model.version
            self.rounds.pending.clear()
            self.model = model

    def merge_if_ready(self) -> None:
        if not self.rounds.ready(time.monotonic()):
            return
        try:
            result = self.rounds.close()
        except AggregationError as exc:
            self.refuse(self.topics.model, b"", "aggregation", str(exc))
            self.rounds.pending.clear()
            return
        previous = self.model
        scaler = result.scaler
        if previous is not None and previous.params.features == result.params.features:
            scaler = merge(previous.scaler, scaler)  # the fleet's moments: exact, not averaged
        self.model = Model(version=self.rounds.version, ts=time.time(),
                           n=(previous.n if previous else 0) + result.n,
                           contributors=result.contributors, target=self.target,
                           params=result.params, scaler=scaler, kind=result.kind)
        self.node.publish(self.topics.model, encode_model(self.model), qos=1, retain=True)

    def refuse(self, topic: str, payload: bytes, reason: str, detail: str) -> None:
        self.refused[reason] += 1
        self.node.publish(self.topics.deadletter(self.config.node_id), encode_json({
            "node": self.config.node_id, "reason": reason, "detail": detail,
            "topic": topic, "excerpt": excerpt(payload), "ts": time.time(),
        }))

    def federated_metrics(self) -> dict[str, float]:
        """Sample-weighted mean of the learners' latest prequential metrics."""
        rows = [m for m in self.learner_metrics.values() if m.get("n", 0) > 0]
        total = sum(m["n"] for m in rows)
        if not total:
            return {}
        keys = {k for m in rows for k in m} - {"n"}
        out = {k: sum(m.get(k, 0.0) * m["n"] for m in rows) / total for k in sorted(keys)}
        out["n"] = total
        return out

    def metrics(self) -> dict:
        return {
            "node": self.config.node_id, "kind": "aggregator", "ts": time.time(),
            "model_version": self.rounds.version, "accepted": self.accepted,
            "refused": dict(self.refused), "pending": len(self.rounds.pending),
            "samples": self.model.n if self.model else 0,
            "federated": self.federated_metrics(),
        }

    def publish_metrics(self) -> None:
        self.node.publish(self.topics.metrics(self.config.node_id), encode_json(self.metrics()))

    def run(self) -> None:
        self.node.connect()
        self.node.install_signal_handlers()
        self.node.run(on_stop=self.publish_metrics)
