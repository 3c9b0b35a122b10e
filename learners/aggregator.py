"""The aggregator process: learner updates in, versioned models out (retained, QoS 1).

A thin shell around :class:`~learners.federation.Federation`: on an update, offer it (a refusal
is counted and dead-lettered); on a learner's status, tell the federation who is live; every
50 ms, publish the next model if the strategy is ready. Once the broker has acknowledged a
model, its checkpoint is written, so the retained model is never older than the checkpoint.

On start it loads its newest checkpoint, then reads the retained model: it sends itself a probe
after subscribing and merges nothing until the probe comes back, by which time any retained
model has arrived (the broker keeps one connection's order). It goes on from the higher
version; a checkpoint newer than the retained model is published again, as it was, once the
first update shows the fleet learns the checkpoint's task.

That first update after a resume (from a checkpoint or a retained model) must learn the task
the aggregator resumed: if it does not, the aggregator stops with :class:`TaskMismatch` (one
line, exit 1) instead of refusing every update as ``wrong_features``. A checkpoint that cannot
be written (a full disk) is logged once per kind of failure and counted
(``checkpoint_errors``); a state directory that cannot be written stops the start.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from broker.address import BrokerAddress
from broker.keyring import Keyring, SignatureRefused
from broker.messages import Model, Update
from broker.model_codec import decode_model, decode_update, encode_model
from broker.service import Service
from broker.topics import Topics
from broker.wire import MAX_PAYLOAD_BYTES, DecodeError
from learners.checkpoint import CheckpointError, CheckpointStore
from learners.federation import Federation, FederationConfig

log = logging.getLogger(__name__)


class TaskMismatch(Exception):
    """The fleet learns another task than the checkpoint or retained model resumed."""


@dataclass(frozen=True)
class AggregatorConfig:
    node_id: str = "aggregator"
    federation: FederationConfig = field(default_factory=FederationConfig)
    state_dir: Path | None = None  # checkpoints; None: none written
    keep: int = 3
    metrics_interval: float = 1.0
    max_payload: int = MAX_PAYLOAD_BYTES
    keyring: Keyring | None = None  # signs every model; with a trust file, checks updates
    keys_interval: float = 1.0  # seconds between checks for a changed key or trust file


class Aggregator(Service):
    kind = "aggregator"

    def __init__(self, config: AggregatorConfig, topics: Topics, broker: BrokerAddress) -> None:
        self.config = config
        self.federation = Federation(config.federation)
        self.store = (CheckpointStore(config.state_dir, config.keep)
                      if config.state_dir is not None else None)
        self.restored: Model | None = None
        self.checkpointed = 0  # version of the newest checkpoint written
        self.checkpoint_errors: Counter[str] = Counter()  # by kind (errno name)
        # where the task came from until an update confirms it (a checkpoint, a retained model)
        self.task_source: str | None = None
        self.failure: TaskMismatch | None = None
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
        self.keys = config.keyring or Keyring()
        self.node.every(config.keys_interval, self.keys.refresh)

    # ------------------------------------------------------------------ start

    def restore(self) -> None:
        """Go on from the newest usable checkpoint, if there is one (damaged ones are logged
        and skipped by the store)."""
        if self.store is None:
            return

        def accept(state: dict) -> None:
            federation = Federation(self.config.federation)
            federation.restore(state)
            self.federation = federation

        path = self.store.load(accept)
        if path is None:
            return
        self.restored = self.federation.model
        self.checkpointed = self.federation.version
        if self.restored is not None:
            self.task_source = f"checkpoint {path}"
        log.info("%s: resumed checkpoint v%d from %s", self.node_id, self.checkpointed, path,
                 extra={"node": self.node_id, "version": self.checkpointed, "path": str(path)})

    def connect(self) -> None:
        if self.store is not None:
            self.store.check()  # a directory we cannot write to stops us now, not later
        self.restore()
        super().connect()
        self.node.publish(self.topics.probe(self.config.node_id), b"probe", qos=1)

    # ------------------------------------------------------------------ messages

    def handle(self, topic: str, payload: bytes) -> None:
        t = self.topics
        if self.failure is not None:
            return
        if topic == t.model:
            self.resume_from(payload)
        elif topic.startswith(t.node_status("")):
            self.federation.set_status(t.last_level(topic), payload == b"online")
        elif topic == t.probe(self.config.node_id):
            self.on_resumed()
        else:
            self.take_update(topic, payload)

    def take_update(self, topic: str, payload: bytes) -> None:
        try:  # signed by a gateway's key whose name is the update's learner (and topic's)
            body, signer = self.keys.check(payload, "update", "gateway")
            update = decode_update(body, self.config.max_payload)
            if signer is not None and signer.name != update.learner:
                raise SignatureRefused("wrong_signer", f"{signer.name}'s key signed "
                                       f"{update.learner}'s update")
        except (DecodeError, SignatureRefused) as exc:
            self.refuse(topic, payload, exc.reason, getattr(exc, "detail", str(exc)))
            return
        if self.task_source is not None and not self.task_confirmed(topic, payload, update):
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
        try:  # with a trust file: ours only, signed by a key of this aggregator's
            body, _ = self.keys.check(payload, "model", "aggregator", self.node_id)
            model = decode_model(body, self.config.max_payload)
        except (DecodeError, SignatureRefused) as exc:
            self.refuse(self.topics.model, payload, f"model_{exc.reason}", str(exc))
            return
        self.retained_version = max(self.retained_version, model.version)
        if self.federation.resume(model):
            self.task_source = f"the retained model v{model.version} on {self.topics.model}"
            log.info("%s: going on from the retained model v%d", self.node_id, model.version,
                     extra={"node": self.node_id, "version": model.version})

    def on_resumed(self) -> None:
        """Every retained model is in: a checkpoint newer than the broker's model goes out
        again, the same version with the same weights."""
        if self.resumed:
            return
        self.resumed = True
        if self.task_source is None:
            self.republish()

    def republish(self) -> None:
        """The checkpoint's model goes out again if the broker's is older."""
        model = self.restored
        if model is not None and model.version > self.retained_version:
            self.node.publish(self.topics.model, self.keys.sign(encode_model(model), "model"),
                              qos=1, retain=True)
            log.info("%s: model v%d from the checkpoint broadcast again", self.node_id,
                     model.version, extra={"node": self.node_id, "version": model.version})

    def task_confirmed(self, topic: str, payload: bytes, update: Update) -> bool:
        """The first update after a resume must learn the resumed task; if it does not, stop
        (:class:`TaskMismatch`): refusing every update would be silent."""
        ledger = self.federation.ledger
        problem = ledger.task_problem(update)
        if problem is None:
            self.task_source = None
            if self.resumed:
                self.republish()
            return True
        self.refuse(topic, payload, problem.reason, problem.detail)
        remedy = ("move it away or use --state-dir / --no-checkpoints"
                  if self.task_source.startswith("checkpoint") else
                  f"clear it (mosquitto_pub -r -n -t {self.topics.model}) or use another "
                  "--prefix")
        self.failure = TaskMismatch(
            f"{self.task_source} is for features {list(ledger.features or ())} target "
            f"{ledger.target} ({ledger.kind}); this fleet learns {list(update.params.features)} "
            f"target {update.target} ({update.kind}): {remedy}")
        self.stop()
        return False

    # ------------------------------------------------------------------ out

    def merge_if_ready(self) -> None:
        if not self.resumed:
            return
        model = self.federation.step(time.monotonic(), time.time())
        if model is None:
            return
        state = self.federation.to_state()
        self.node.publish(self.topics.model, self.keys.sign(encode_model(model), "model"),
                          qos=1, retain=True, on_ack=lambda: self.checkpoint(model.version, state))
        self.log_model(model)

    def log_model(self, model: Model) -> None:
        """One INFO line a model; a drift reaction or a rollback (from its notes) says so."""
        extra = {"node": self.node_id, "version": model.version}
        log.info("%s: model v%d broadcast: %d samples from %s", self.node_id, model.version,
                 model.n, ", ".join(model.contributors), extra=extra)
        drift, rollback = model.notes.get("drift"), model.notes.get("rollback")
        if drift:
            log.info("%s: drift flagged by %s: model v%d reacts with policy %s", self.node_id,
                     ", ".join(drift["learners"]), model.version, drift["policy"], extra=extra)
        if rollback:
            log.warning("%s: model v%d rolls back to v%s: %s", self.node_id, model.version,
                        rollback.get("to_version"), rollback.get("reason"), extra=extra)

    def checkpoint(self, version: int, state: dict) -> None:
        if self.store is None or version <= self.checkpointed:
            return
        try:
            path = self.store.save(version, state)
        except CheckpointError as exc:
            if not self.checkpoint_errors[exc.kind]:
                log.error("%s: %s (logged once for %s; counted in checkpoint_errors)",
                          self.node_id, exc, exc.kind,
                          extra={"node": self.node_id, "version": version, "reason": exc.kind})
            self.checkpoint_errors[exc.kind] += 1
            return
        self.checkpointed = version
        log.debug("%s: checkpoint v%d written to %s", self.node_id, version, path,
                  extra={"node": self.node_id, "version": version, "path": str(path)})

    def refuse(self, topic: str, payload: bytes, reason: str, detail: str) -> None:
        log.info("%s: refused %s: %s (%s)", self.node_id, topic, reason, detail,
                 extra={"node": self.node_id, "reason": reason})
        self.refused[reason] += 1
        self.dead_letter(topic, payload, reason, detail)

    def handle_error(self, topic: str, payload: bytes, exc: BaseException) -> None:
        self.refuse(topic, payload, "internal_error", repr(exc))

    def run(self) -> None:
        """The service's life; :class:`TaskMismatch` if it had to stop for the task."""
        super().run()
        if self.failure is not None:
            raise self.failure

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
            "checkpoint_errors": sum(self.checkpoint_errors.values()),
            "samples": fed.model.n if fed.model else 0,
            "federated": self.federated_metrics(),
        }
