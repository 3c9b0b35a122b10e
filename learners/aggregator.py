"""The aggregator process: learner updates in, versioned models out (retained, QoS 1).

A thin shell around :class:`~learners.federation.Federation`: on an update, offer it (a refusal
is counted and dead-lettered); on a learner's status, tell the federation who is live; every
50 ms, publish the next model if the strategy is ready. Once the broker has acknowledged a
model, its checkpoint is written, so the retained model is never older than the checkpoint.

On start it loads its newest checkpoint, then reads the retained model (it merges nothing
until a probe it sent itself after subscribing comes back, behind any retained model). It never
adopts a model it did not make (:mod:`learners.provenance`; with a trust file, one its own key
did not sign): any other model is refused (``model_not_ours`` or the signature's reason), and
its own last model goes out again. With a trust file an update must be signed by its learner's
key: a gateway's, or for ``site-S`` a site aggregator's. After a resume, the first update must
learn the resumed task, else it stops with :class:`TaskMismatch` (one line, exit 1). A
checkpoint that cannot be written is logged once per kind and counted
(``checkpoint_errors``); a state directory that cannot be written stops the start.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from broker.address import BrokerAddress
from broker.bridge import update_signer
from broker.keyring import Keyring, SignatureRefused
from broker.messages import Model, Update
from broker.model_codec import decode_model, decode_update, encode_model
from broker.node_status import is_online
from broker.service import Service
from broker.topics import Topics
from broker.wire import MAX_PAYLOAD_BYTES, DecodeError
from learners.checkpoint import CheckpointError, CheckpointStore
from learners.federation import Federation, FederationConfig
from learners.ledger import update_task
from learners.provenance import OwnModels, digest
from learners.reporting import aggregator_counters, log_model

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
    kind = "aggregator"  # also the role of the key that signs its models

    def __init__(self, config: AggregatorConfig, topics: Topics, broker: BrokerAddress) -> None:
        self.config = config
        self.started = time.monotonic()
        self.federation = Federation(config.federation, self.started)
        self.own = OwnModels()  # the models it broadcast, by digest
        self.own_retained = False  # the broker's retained model is the checkpoint's
        self.store = (CheckpointStore(config.state_dir, config.keep)
                      if config.state_dir is not None else None)
        self.restored, self.checkpointed = None, 0  # checkpoint: its model, newest version
        self.checkpoint_errors: Counter[str] = Counter()  # by kind (errno name)
        self.task_source: str | None = None  # a checkpoint's, a retained model's: unconfirmed
        self.failure: TaskMismatch | None = None
        self.resumed = False  # the retained model (if any) has been read
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
        """Go on from the newest usable checkpoint, if any (the store skips damaged ones)."""
        if self.store is None:
            return

        digests: list[str] = []

        def accept(state: dict) -> None:
            federation = Federation(self.config.federation, self.started)
            federation.restore(state)
            self.federation = federation
            digests.append(str(state.get("model_digest", "")))

        for known in self.store.broadcasts():  # those the checkpoint may not have caught up with
            self.own.remember_digest(known)
        path = self.store.load(accept)
        if path is None:
            return
        self.restored = self.federation.model
        if self.restored is not None:  # an older checkpoint has no digest: its model's bytes
            self.own.remember_digest(digests[-1] or digest(encode_model(self.restored)))
        self.checkpointed = self.federation.version
        for learner in self.federation.ledger.forget_marks_beyond(
                self.federation.seq_ceiling(time.time())):
            log.warning("%s: the checkpoint's seq mark of %s is beyond any clock: forgotten",
                        self.node_id, learner, extra={"node": self.node_id})
        if self.restored is not None:
            self.task_source = f"checkpoint {path}"
        log.info("%s: resumed checkpoint v%d from %s", self.node_id, self.checkpointed, path,
                 extra={"node": self.node_id, "version": self.checkpointed, "path": str(path)})

    def connect(self) -> None:
        if self.store is not None:
            self.store.check()  # a directory we cannot write to stops us now, not later
        self.restore()
        if self.federation.roster.open:
            log.info("%s: no roster of learners (--learners): any learner id is accepted",
                     self.node_id, extra={"node": self.node_id})
        super().connect()
        self.node.publish(self.topics.probe(self.config.node_id), b"probe", qos=1)

    # ------------------------------------------------------------------ messages

    def handle(self, topic: str, payload: bytes) -> None:
        t = self.topics
        if self.failure is not None:
            return
        if topic == t.model:
            self.check_model(payload)
        elif topic.startswith(t.node_status("")):
            self.federation.set_status(t.last_level(topic), is_online(payload))
        elif topic == t.probe(self.config.node_id):
            self.on_resumed()
        else:
            self.take_update(topic, payload)

    def take_update(self, topic: str, payload: bytes) -> None:
        try:  # signed by the key of the update's learner (a gateway's, or a site's: site-S)
            body, signer = self.keys.check(payload, "update", ("gateway", "site_aggregator"))
            update = decode_update(body, self.config.max_payload)
            if signer is not None and (signer.name, signer.role) != (
                    update.learner, update_signer(update.learner)):
                raise SignatureRefused("wrong_signer", f"{signer.role} {signer.name}'s key "
                                       f"signed {update.learner}'s update")
        except (DecodeError, SignatureRefused) as exc:
            self.refuse(topic, payload, exc.reason, getattr(exc, "detail", str(exc)))
            return
        if self.task_source is not None and not self.task_confirmed(topic, payload, update):
            return
        refusal = self.federation.offer(update, self.topics.last_level(topic), time.monotonic(),
                                        time.time())
        if refusal is not None:
            self.refuse(topic, payload, refusal.reason, refusal.detail)
            return
        self.accepted += 1
        self.learner_metrics[update.learner] = update.metrics
        self.merge_if_ready()  # at once: a quorum must not wait for the next timer tick

    def check_model(self, payload: bytes) -> None:
        """Our own model (signed by our key with a trust file, else bytes we broadcast) changes
        nothing but a resume at start; any other is refused and replaced by our last one."""
        try:
            body, signer = self.keys.check(payload, "model", self.kind, self.node_id)
        except SignatureRefused as exc:
            self.refuse_model(payload, f"model_{exc.reason}", str(exc))
            return
        if signer is not None or self.own.is_own(payload):
            if not self.resumed:  # the retained one; ours, maybe newer than the checkpoint
                try:
                    model = decode_model(body, self.config.max_payload)
                except DecodeError as exc:
                    self.refuse_model(payload, f"model_{exc.reason}", str(exc))
                    return
                self.own_retained = True
                if self.federation.resume(model):
                    log.info("%s: going on from its own retained model v%d", self.node_id,
                             model.version, extra={"node": self.node_id,
                                                   "version": model.version})
            return
        try:
            model = decode_model(body, self.config.max_payload)
            detail = (f"v{model.version} is none of the models {self.node_id} made (its "
                      f"checkpoint's is v{self.federation.version})")
        except DecodeError as exc:
            detail = f"not a model {self.node_id} made, and undecodable: {exc}"
        self.refuse_model(payload, "model_not_ours", detail)

    def refuse_model(self, payload: bytes, reason: str, detail: str) -> None:
        """A model that is not ours: refused, and our own goes out again to replace it."""
        self.refuse(self.topics.model, payload, reason, detail)
        self.own_retained = False
        if self.resumed and self.federation.model is not None and self.task_source is None:
            self.publish_model(self.federation.model)

    def on_resumed(self) -> None:
        """Every retained model is in: a checkpoint newer than the broker's model goes out
        again, the same version with the same weights."""
        if self.resumed:
            return
        self.resumed = True
        if self.task_source is None:
            self.republish()

    def republish(self) -> None:
        """The checkpoint's model goes out again if the broker's is not it."""
        model = self.restored
        if model is not None and not self.own_retained:
            self.publish_model(model)
            self.own_retained = True
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
        remedy = "move it away or use --state-dir / --no-checkpoints"
        self.failure = TaskMismatch(f"{self.task_source} is for {ledger.task()}; this fleet "
                                    f"learns {update_task(update)}: {remedy}")
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
        payload = self.publish_model(model, on_ack=lambda: self.checkpoint(model.version, state))
        state["model_digest"] = digest(payload)  # how a restart knows the retained one as ours
        log_model(self.node_id, model)

    def publish_model(self, model: Model, on_ack=None) -> bytes:
        """Broadcast ``model`` (retained, QoS 1) and remember it as ours."""
        payload = self.keys.sign(encode_model(model), "model")
        self.own.remember(payload)
        if self.store is not None:
            try:
                self.store.note_broadcasts(list(self.own.order)[-16:])
            except CheckpointError as exc:
                self.checkpoint_errors[exc.kind] += 1
        self.node.publish(self.topics.model, payload, qos=1, retain=True, on_ack=on_ack)
        return payload

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

    def counters(self) -> dict:
        return aggregator_counters(self.federation, self.accepted, self.refused,
                                   self.checkpointed, sum(self.checkpoint_errors.values()),
                                   self.learner_metrics, self.own.broadcast)
