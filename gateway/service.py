"""The gateway process: readings of its partition in, learner updates out.

Each payload is taken into the turn's block by the pure :class:`~gateway.pipeline.
ReadingPipeline` (decoded into columns, ids checked). When the turn's messages are handled (at
most :data:`broker.client.BURST` of them, or :data:`MAX_BLOCK` readings), the block is judged in
one call (sequence marks, clock, cleaning, features), refusals are dead-lettered, and the
admitted samples are predicted-then-learned in arrival order by one kernel call, before any
model is adopted or update sent. Every ``sync_every`` samples or ``sync_interval`` seconds:
publish an update. On each newer model: adopt it. Every reading ends as learned, or rejected
with a counted reason (and dead-lettered), or, for a sequence number that never came, as a gap.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter
from dataclasses import replace

import numpy as np

from broker.address import BrokerAddress
from broker.client import Node
from broker.keyring import MODEL_SIGNERS, Keyring, SignatureRefused
from broker.latency import LatencyHistogram
from broker.model_codec import decode_model, encode_update
from broker.service import Service
from broker.topics import TopicError, Topics
from broker.wire import DecodeError, encode_json
from gateway import pipeline as gateway_pipeline
from gateway.config import GatewayConfig
from gateway.learner_setup import learner_of, model_maker, step_search
from gateway.local_time import LocalTime
from gateway.outcomes import ADMITTED
from gateway.partition import ReadingTopics
from gateway.personal_store import parts_store
from gateway.personalising import Personalising
from gateway.pipeline import ReadingPipeline
from gateway.sample_log import SampleLog
from gateway.task_check import carried, channels_of, task_problem
from gateway.validation import Rejected
from learners import personal_kernel, sgd_kernel
from learners.drift import DriftMonitor
from learners.evaluation import Prequential
from learners.imbalance import parse_threshold
from learners.model_admission import SAME, ModelAdmission, Task
from learners.personal import check_mode

log = logging.getLogger(__name__)

#: Readings taken before they are judged and learned even in the middle of a turn.
MAX_BLOCK = 4096


class Gateway(Service):
    """One online learner, fed by its readings' node, syncing on its control node."""

    kind = "gateway"

    def __init__(self, config: GatewayConfig, topics: Topics, broker: BrokerAddress) -> None:
        self.config = config
        self.local = learner_of(config)
        binary = config.kind == "binary"  # the judge refuses a target not 0 or 1
        self.pipeline = ReadingPipeline(config.spec, replace(config.cleaning,
                                                             binary_target=binary))
        #: Set when the task does not fit the stream (:mod:`gateway.task_check`): it stops.
        self.task_problem: str | None = None
        self.task_checked = False
        self.admission = ModelAdmission(config.model_bounds, Task(
            config.spec.features, config.spec.target, config.kind))
        self.evaluation = Prequential(config.kind, parse_threshold(config.threshold))
        local = config.spec.local_time  # in every update, so that models carry it on
        self._local_time = {} if local == LocalTime() else local.as_dict()
        self.global_loss = Prequential(config.kind)  # the global model's, for the updates
        self.drift = DriftMonitor(config.drift_detector)
        self.drift_unsent = 0  # changes detected since the last update
        self.update_seq = time.time_ns() // 1000  # keeps going up across restarts
        self.learned = self.foreign = self.updates_sent = self.models_adopted = 0
        self.other_rejected: Counter[str] = Counter()  # not readings: topics, models, crashes
        self.model_ts: float | None = None  # the adopted model's own time (its age: now - it)
        #: From the first update sent since the last adoption to adopting a model naming us
        self.sync_latency = LatencyHistogram()
        self.started = time.time()
        self.owners = ReadingTopics(topics, config.partition)  # (site, device, ours?) a topic
        #: What it learned, kept for `up`'s baselines (:mod:`gateway.sample_log`), or None.
        self.samples = config.samples_log and SampleLog(config.samples_log, config.spec.features)
        mode = check_mode(config.personalize)  # learners.personal
        self.personal = (Personalising(mode, model_maker(config), self.owners, self.update_seq,
                                       step_search(config)) if mode != "none" else None)
        self.parts_store = parts_store(config, self.personal)  # checked, resumed: or None
        super().__init__(config.node_id, topics, broker,
                         metrics_interval=config.metrics_interval,
                         subscriptions=[(f, 1) for f in config.partition.subscriptions(topics)],
                         tasks=[(config.sync_interval, self.sync_if_due)],
                         on_drained=self.learn_pending, kept_session=True)
        # Models and updates on a connection of their own: on the readings' one a model waits
        # behind every reading queued (weather replay: 103 updates refused as stale, before).
        self.control = Node(
            f"{config.node_id}-control", broker,
            subscriptions=[(topics.model, 1)],
            handler=lambda topic, payload: self.adopt(payload),
            on_error=self.handle_error,
        )
        self.companions.append(self.control)
        self.keys = config.keyring or Keyring()
        self.node.every(config.keys_interval, self.keys.refresh)
        self.node.every(config.quality_interval, self.publish_quality)

    # ------------------------------------------------------------------ messages

    def handle(self, topic: str, payload: bytes) -> None:
        try:
            site, device, owned = self.owners.of(topic)
        except TopicError as exc:
            self.reject(topic, payload, Rejected("bad_topic", str(exc)))
            return
        if not owned:
            self.foreign += 1
            return
        self.pipeline.take(device, payload, time.time(), site, ref=topic)
        if self.pipeline.pending >= MAX_BLOCK:
            self.learn_pending()

    def learn_pending(self) -> None:
        """Judge the readings taken since the last block and learn the admitted, in order."""
        if not self.pipeline.pending:
            return
        block = self.pipeline.flush()
        for index, why in block.rejected:
            self.dead_letter(block.refs[index], block.payloads[index], why.reason, why.detail)
        if len(block.y):
            keys = None if self.personal is None else self.personal.keys(
                block.refs, block.ends, np.flatnonzero(block.rows.code == ADMITTED))
            predicted = self.learn(block.X, block.y, keys)
            if self.samples is not None:
                self.samples.add_block(block, *predicted, self.pipeline.devices_table.names)
        if not self.task_checked:
            self.check_task(block.payloads)

    def check_task(self, payloads: list[bytes]) -> None:
        """Once, after the first ``check_after`` readings: a task that does not fit the stream
        is logged once (an ERROR naming what is missing and what the readings carry), said in
        the metrics (``task_problem``), and stops the gateway."""
        pipe = self.pipeline
        if pipe.presence.readings < self.config.check_after:
            return
        self.task_checked = True
        problem = task_problem(pipe.presence, self.config.check_after,
                               pipe.accounting.rejected["target_not_binary"],
                               pipe.accounting.admitted)
        if problem is None:
            return
        seen = carried(channels_of(payloads, self.config.cleaning.max_payload))
        self.task_problem = f"{problem}; the readings carry: {seen}"
        log.error("%s: %s; stopping", self.node_id, self.task_problem,
                  extra={"node": self.node_id, "reason": "task_problem"})
        self.publish_metrics(qos=1)
        self.stop()

    def learn(self, X: np.ndarray, ys: np.ndarray, keys: list | None = None
              ) -> tuple[np.ndarray, np.ndarray | None]:
        """Predict, then learn, each sample in order (with ``keys``, each sample's personal
        part too: its prediction is the one judged); sync when enough were learned. The
        global model's predictions, and the personalised (or None)."""
        skip = 1 if self.local.learner.n_learned == 0 else 0  # a blank learner can't guess
        predictions = global_predictions = self.local.learn(X, ys)
        if keys is not None and self.personal is not None:
            # the rollback guard and the drift monitor judge the global model: its own errors
            self.global_loss.update_many(ys[skip:], predictions[skip:])
            predictions = self.personal.learn(keys, X, ys, predictions)
        self.evaluation.update_many(ys[skip:], predictions[skip:])
        drifts = self.drift.update_many(np.abs(ys[skip:] - global_predictions[skip:]))
        if drifts:
            log.info("%s: drift detected in the prediction error (model v%d); the next update "
                     "says so", self.node_id, self.local.base_version,
                     extra={"node": self.node_id, "version": self.local.base_version})
        self.drift_unsent += drifts
        self.learned += len(ys)
        if self.local.since_send >= self.config.sync_every:
            self.publish_update()
        return global_predictions, None if predictions is global_predictions else predictions

    def adopt(self, payload: bytes) -> None:
        try:  # with a trust file: an aggregator's (or site aggregator's) key, newer than ours
            body, signer = self.keys.check(payload, "model", MODEL_SIGNERS)
            model = decode_model(body, self.config.cleaning.max_payload)
        except (DecodeError, SignatureRefused) as exc:
            self.reject(self.topics.model, payload, Rejected(f"model_{exc.reason}", str(exc)))
            return
        # learners.model_admission: the one judge
        refused = self.admission.judge(model, signed=signer is not None)
        if refused is SAME:
            return
        if refused is not None:
            self.reject(self.topics.model, payload, Rejected(*refused))
            return
        self.local.adopt(model, replace=True)  # even a lower version: a provisional one's
        self.admission.adopted(model)
        self.models_adopted += 1
        self.model_ts = model.ts
        if self.config.node_id in model.contributors:
            self.sync_latency.stop(time.time())
        log.info("%s: model v%d adopted (%d samples, from %s)", self.node_id, model.version,
                 model.n, ", ".join(model.contributors) or "a checkpoint",
                 extra={"node": self.node_id, "version": model.version})

    # ------------------------------------------------------------------ outputs

    def sync_if_due(self) -> None:
        if self.local.since_send > 0:
            self.publish_update()

    def publish_update(self) -> None:
        self.update_seq += 1
        # the recent loss the rollback guard judges: the global model's (not the personalised)
        window = self.evaluation.take_window()
        window = self.global_loss.take_window() if self.personal is not None else window
        update = self.local.update(self.config.node_id, self.update_seq,
                                   self.config.spec.target, time.time(),
                                   {**self.evaluation.as_dict(), **window},
                                   drift=self.drift_unsent, local_time=self._local_time)
        self.drift_unsent = 0
        self.control.publish(self.topics.update(self.config.node_id),
                             self.keys.sign(encode_update(update), "update"), qos=1)
        self.updates_sent += 1
        self.sync_latency.start(time.time())
        for topic, part in self.personal.messages(
                self.topics, self.keys, self.config.node_id, update.target, update.ts
        ) if self.personal else []:  # gateway.personalising: changed parts, signed
            self.control.publish(topic, part, qos=1, retain=True)
        if self.parts_store is not None:
            self.parts_store.save_if_due(time.monotonic())
        log.debug("%s: update sent: %d samples on model v%d", self.node_id, update.n,
                  update.base_version, extra={"node": self.node_id, "version":
                                              update.base_version, "samples": update.n})

    def reject(self, topic: str, payload: bytes, why: Rejected) -> None:
        """Count and dead-letter something that is not a reading the pipeline accounted for;
        a refused model is logged (a WARNING the first time for each reason)."""
        if why.reason.startswith("model_"):
            first = why.reason not in self.other_rejected
            log.log(logging.WARNING if first else logging.DEBUG, "%s: model refused: %s (%s)",
                    self.node_id, why.reason, why.detail,
                    extra={"node": self.node_id, "reason": why.reason})
        self.other_rejected[why.reason] += 1
        self.dead_letter(topic, payload, why.reason, why.detail)

    def handle_error(self, topic: str, payload: bytes, exc: BaseException) -> None:
        self.reject(topic, payload, Rejected("internal_error", f"{type(exc).__name__}: {exc}"))

    def counters(self) -> dict:
        return {
            "partition": str(self.config.partition),
            "received": self.pipeline.accounting.total, "learned": self.learned,
            "rejected": dict(self.pipeline.accounting.rejected),
            "gaps": self.pipeline.gaps, "restarts": self.pipeline.restarts,
            "other_rejected": dict(self.other_rejected),
            "foreign": self.foreign, "devices": self.pipeline.devices,
            "model_version": self.local.base_version, "updates_sent": self.updates_sent,
            "models_adopted": self.models_adopted, "drifts": self.drift.detections,
            "lr": self.local.learner.lr, "lr_auto": self.local.steps is not None,
            "step_refused": self.local.step_refused,
            "prequential": self.evaluation.as_dict(), "task_problem": self.task_problem,
            "sync_latency": self.sync_latency.as_dict(), "model_ts": self.model_ts,
            "personalize": self.personal.mode if self.personal else "none",
            "personal_lr": self.personal and self.personal.parts.lr,  # auto: their own step
            "checkpoint_errors": self.parts_store.errors.total() if self.parts_store else 0,
        }

    def publish_quality(self) -> None:
        """The per-device data-quality summary, on the metrics topic as its own kind."""
        self.node.publish(self.topics.metrics(self.config.node_id), encode_json({
            "node": self.config.node_id, "kind": "quality", "ts": time.time(),
            "devices": self.pipeline.quality(),
        }))

    # ------------------------------------------------------------------ life

    def connect(self) -> None:
        sgd_kernel.warm()  # before we listen: the first readings must not wait for it
        if self.personal is not None:
            personal_kernel.warm()
        gateway_pipeline.warm()
        # start-up's objects out of the cyclic GC's sight: 51,487 -> 70,034 readings/s on a
        # backlog (docs/architecture.md, "gc.freeze()")
        gc.freeze()
        super().connect()  # the control connection, then the readings'

    def on_stop(self) -> None:
        self.learn_pending()
        self.pipeline.close()  # the stream has ended: numbers still missing are gaps
        self.sync_if_due()
        if self.parts_store is not None:  # the parts as they end
            self.parts_store.save()
        self.publish_quality()
        self.publish_metrics()
        if self.samples is not None:
            self.samples.save()

