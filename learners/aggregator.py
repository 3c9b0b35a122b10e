"""The aggregator process: learner updates in, versioned models out (retained, QoS 1).

A thin shell around :class:`~learners.federation.Federation`: on an update, offer it (a refusal
is counted and dead-lettered); on a learner's status, tell the federation who is live; every
50 ms, publish the next model if the strategy is ready. Once the broker has acknowledged a
model, its checkpoint is written, so the retained model is never older than the checkpoint.

On start it loads its newest checkpoint, then reads the retained model: it sends itself a probe
after subscribing and merges nothing until the probe comes back, by which time any retained
model has arrived (the broker keeps one connection's order). It goes on from the higher
version; a checkpoint newer than the retained model is published again, as it was.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from broker.address import BrokerAddress
from broker.messages import Model
from broker.model_codec import decode_model, decode_update, encode_model
from broker.service import Service
from broker.topics import Topics
from broker.wire import MAX_PAYLOAD_BYTES, DecodeError
from learners.checkpoint import CheckpointStore
from learners.federation import Federation, FederationConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AggregatorConfig:
    node_id: str = "aggregator"
    federation: FederationConfig = field(default_factory=FederationConfig)
    state_dir: Path | None = None  # checkpoints; None: none written
    keep: int = 3
    metrics_interval: float = 1.0
    max_payload: int = MAX_PAYLOAD_BYTES


class Aggregator(Service):
    kind = "aggregator"

    def __init__(self, config: AggregatorConfig, topics: Topics, broker: BrokerAddress) -> None:
        self.config = config
        self.federation = Federation(config.federation)
        self.store = (CheckpointStore(config.state_dir, config.keep)
                      if config.state_dir is not None else None)
        self.restored: Model | None = None
        self.checkpointed = 0  # version of the newest checkpoint written
        self.resumed = False  # the retained model (if any) has been read
        self.retained_version = 0
        self.refused: Counter[str] = Counter()
        self.accepted = 0
        self.learner_metrics: dict[str, dict[str, float]] = {}
        super().__init__(
            config.node_id, topics, broker, metrics_interval=config.metrics_interval,
            subscriptions=[(topics.updates_filter, 1), (topics.model, 1),
                           (topics.node_status_filter, 1), (topics.probe(config.node_id), 1)],
            tasks=[(0.05, self.merge_if_ready)], kept_session=True,
        )

    # ------------------------------------------------------------------ start

    def restore(self) -> None:
        """Go on from the newest checkpoint, if there is one."""
        state = self.store.latest() if self.store is not None else None
        if state is None:
            return
        try:
            self.federation.restore(state)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("%s: checkpoint not usable (%s); starting afresh", self.config.node_id, exc)
            self.federation = Federation(self.config.federation)
            return
        self.restored = self.federation.model
        self.checkpointed = self.federation.version

    def connect(self) -> None:
        self.restore()
        super().connect()
        self.node.publish(self.topics.probe(self.config.node_id), b"probe", qos=1)

    # ------------------------------------------------------------------ messages

    def handle(self, topic: str, payload: bytes) -> None:
        t = self.topics
        if topic == t.model:
            self.resume_from(payload)
        elif topic.startswith(t.node_status("")):
            self.federation.set_status(t.last_level(topic), payload == b"online")
        elif topic == t.probe(self.config.node_id):
            self.on_resumed()
        else:
            self.take_update(topic, payload)

    def take_update(self, topic: str, payload: bytes) -> None:
        try:
            update = decode_update(payload, self.config.max_payload)
        except DecodeError as exc:
            self.refuse(topic, payload, exc.reason, str(exc))
            return
        refusal = self.federation.offer(update, self.topics.last_level(topic), time.monotonic())
        if refusal is not None:
            self.refuse(topic, payload, refusal.reason, refusal.detail)
            return
        self.accepted += 1
        self.learner_metrics[update.learner] = update.metrics
        self.merge_if_ready()  # at once: a quorum must not wait for the next timer tick

    def resume_from(self, payload: bytes) -> None:
        """A retained model newer than ours (an earlier run's) sets where we go on from."""
        try:
            model = decode_model(payload, self.config.max_payload)
        except DecodeError as exc:
            self.refuse(self.topics.model, payload, f"model_{exc.reason}", str(exc))
            return
        self.retained_version = max(self.retained_version, model.version)
        self.federation.resume(model)

    def on_resumed(self) -> None:
        """Every retained model is in: a checkpoint newer than the broker's model goes out
        again, the same version with the same weights."""
        if self.resumed:
            return
        self.resumed = True
        model = self.restored
        if model is not None and model.version > self.retained_version:
            self.node.publish(self.topics.model, encode_model(model), qos=1, retain=True)

    # ------------------------------------------------------------------ out

    def merge_if_ready(self) -> None:
        if not self.resumed:
            return
        model = self.federation.step(time.monotonic(), time.time())
        if model is None:
            return
        state = self.federation.to_state()
        self.node.publish(self.topics.model, encode_model(model), qos=1, retain=True,
                          on_ack=lambda: self.checkpoint(model.version, state))

    def checkpoint(self, version: int, state: dict) -> None:
        if self.store is not None and version > self.checkpointed:
            self.store.save(version, state)
            self.checkpointed = version

    def refuse(self, topic: str, payload: bytes, reason: str, detail: str) -> None:
        self.refused[reason] += 1
        self.dead_letter(topic, payload, reason, detail)

    def handle_error(self, topic: str, payload: bytes, exc: BaseException) -> None:
        self.refuse(topic, payload, "internal_error", repr(exc))

    def federated_metrics(self) -> dict[str, float]:
        """Sample-weighted mean of the learners' latest prequential metrics."""
        rows = [m for m in self.learner_metrics.values() if m.get("n", 0) > 0]
        total = sum(m["n"] for m in rows)
        if not total:
            return {}
        keys = {k for m in rows for k in m} - {"n", "recent_loss", "recent_n"}
        out = {k: sum(m.get(k, 0.0) * m["n"] for m in rows) / total for k in sorted(keys)}
        out["n"] = total
        return out

    def counters(self) -> dict:
        fed = self.federation
        return {
            "model_version": fed.version, "accepted": self.accepted,
            "refused": dict(self.refused), "pending": len(fed.strategy.pending),
            "strategy": fed.strategy.name, "quorum": fed.quorum(),
            "round_timeout": fed.strategy.round_timeout,
            "learners": sorted(fed.learners), "offline": sorted(fed.offline & fed.learners),
            "rollbacks": fed.rollbacks, "checkpoint_version": self.checkpointed,
            "samples": fed.model.n if fed.model else 0,
            "federated": self.federated_metrics(),
        }
