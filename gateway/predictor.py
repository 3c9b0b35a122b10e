"""The predictor process: the current model plus readings in, predictions out.

It runs the gateway's own cleaning and feature stage (:mod:`gateway.serving`, i.e.
:class:`~gateway.pipeline.ReadingPipeline` with the task's cleaning settings) on its
partition's readings, so it predicts from exactly the feature vectors the gateway learns from;
then one matrix product per turn. Each incoming message gets one prediction message: a single
reading's prediction, or for a batch one columnar batch (``seq``, ``ts``, ``prediction`` and
``actual`` lists). Each carries the version of the model that made it; a binary model's also
its ``decision`` (1 when the probability is at or above the fleet's threshold, its notes'
``threshold``: :func:`learners.imbalance.decision_threshold`). Readings it is given
before its first model are judged all the same (the cleaning state moves on as the gateway's)
and counted as ``no_model_yet``. Several predictors split the readings as gateways do
(``partition``), each reading predicted by one. Falling behind is said out loud: a turn that
read a full burst (more was waiting) counts in ``full_turns``, and the metrics' ``behind`` is
the number of such turns in the interval (0: keeping up); ``lag`` is the largest time from a
reading's own timestamp to its prediction in the interval, and ``prediction_latency`` the
histogram of that time for every reading predicted (:mod:`broker.latency`). The retained status
says it too: ``online behind`` from the first full turn until a metrics interval without one
(then ``online`` again; :mod:`broker.node_status`: every reader still sees it online).

Models are judged as a gateway judges them (:mod:`learners.model_admission`; its task is the
configured one, or without one the first adopted model's); a refused one is counted by reason
and dead-lettered, and predictions go on with the current model. With ``max_model_age`` a model
older than that (now minus its own ``ts``, or as far ahead: a clock that far off is no clock to
trust) is stale: each prediction then says ``"stale": true`` (``stale="mark"``, every
prediction has the field) or is not sent (``"drop"``), counted either way.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import replace

from broker.address import BrokerAddress
from broker.client import BURST
from broker.keyring import MODEL_SIGNERS, Keyring, SignatureRefused
from broker.latency import LatencyHistogram
from broker.messages import Model
from broker.model_codec import decode_model
from broker.node_status import BEHIND
from broker.service import Service
from broker.topics import TopicError, Topics
from broker.wire import DecodeError, encode_json
from gateway.config import STALE_POLICIES, PredictorConfig
from gateway.features import FeatureSpec
from gateway.local_time import LocalTime
from gateway.partition import ReadingTopics
from gateway.pipeline import warm
from gateway.serving import Served, Serving
from learners.imbalance import decision_threshold
from learners.model_admission import SAME, ModelAdmission, Task
from learners.personal_book import PersonalBook

__all__ = ["STALE_POLICIES", "Predictor", "PredictorConfig"]


log = logging.getLogger(__name__)


class Predictor(Service):
    kind = "predictor"

    def __init__(self, config: PredictorConfig, topics: Topics, broker: BrokerAddress) -> None:
        self.config = config
        self.model: Model | None = None
        spec = config.spec
        self.serving = Serving(spec, cleaning(config, config.kind)) if spec is not None else None
        task = spec and config.kind and Task(spec.features, spec.target, config.kind)
        self.admission = ModelAdmission(config.model_bounds, task or None)
        self.predictions = 0
        self.messages_out = 0
        self.stale_predictions = 0  # sent marked stale, or (drop) counted in skipped
        self.skipped: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()  # models, by reason
        self.foreign = 0
        self.full_turns = 0  # turns that read a whole burst: more was waiting
        self._turn_messages = 0
        self._behind = 0  # full turns since the last metrics
        self._lag = 0.0  # the largest reading-to-prediction time since the last metrics
        self.latency = LatencyHistogram()  # reading's ts to its prediction, every reading
        self.owners = ReadingTopics(topics, config.partition)  # (site, device, ours?) a topic
        readings = [(f, config.qos) for f in config.partition.subscriptions(topics)]
        super().__init__(config.node_id, topics, broker,
                         metrics_interval=config.metrics_interval,
                         subscriptions=[(topics.model, 1),
                                        *((f, 1) for f in topics.personal_filters), *readings],
                         on_drained=self.serve_pending, kept_session=True,
                         max_inflight=0)  # QoS 1 predictions: ``unacked`` says how many wait
        self.keys = config.keyring or Keyring()
        self.node.every(config.keys_interval, self.keys.refresh)
        # personal parts (learners.personal): judged as models, against the adopted task
        self.personal = PersonalBook(
            lambda: self.model and (self.model.params.features, self.model.target), self.keys,
            config.model_bounds.max_magnitude, config.max_payload)

    def handle(self, topic: str, payload: bytes) -> None:
        self._turn_messages += 1
        if topic == self.topics.model:
            self.serve_pending()  # what came before the model is predicted by the one before
            self.on_model(payload)
            return
        if self.topics.is_personal(topic):
            self.serve_pending()  # as for a model: what came before, by the part before
            refused = self.personal.offer(topic, payload)
            if refused is not None:
                self.refuse(payload, *refused, topic=topic)
            return
        try:
            site, device, owned = self.owners.of(topic)
        except TopicError:
            self.skipped["bad_topic"] += 1
            return
        if not owned:
            self.foreign += 1
        elif self.serving is None:  # no task yet: it comes with the first model
            self.skipped["no_model_yet"] += 1
        else:
            self.serving.take(device, payload, time.time(), site, ref=(site, device))
            if self.serving.pending >= 4 * BURST:
                self.serve_pending()

    def on_model(self, payload: bytes) -> None:
        try:
            body, signer = self.keys.check(payload, "model", MODEL_SIGNERS)
            model = decode_model(body, self.config.max_payload)
        except (DecodeError, SignatureRefused) as exc:
            self.refuse(payload, f"model_{exc.reason}", str(exc))
            return
        self.take_model(model, payload, signed=signer is not None)

    def take_model(self, model: Model, payload: bytes, signed: bool = False) -> None:
        # learners.model_admission: the one judge
        refused = self.admission.judge(model, signed)
        if refused is SAME:
            return
        if refused is not None:
            self.refuse(payload, *refused)
            return
        if self.serving is None:  # the task is fixed from now on (the admission holds it)
            local = LocalTime(**model.local_time)  # zones the decoder checked
            self.serving = Serving(FeatureSpec(model.params.features, model.target, local),
                                   cleaning(self.config, model.kind))
        self.model = model
        self.admission.adopted(model)
        log.info("%s: model v%d adopted", self.node_id, model.version,
                 extra={"node": self.node_id, "version": model.version})

    def refuse(self, payload: bytes, reason: str, detail: str, topic: str | None = None) -> None:
        """Count and dead-letter a model (or a personal part) not taken (a WARNING the first
        time for each reason)."""
        log.log(logging.DEBUG if reason in self.refused else logging.WARNING,
                "%s: model refused: %s (%s)", self.node_id, reason, detail,
                extra={"node": self.node_id, "reason": reason})
        self.refused[reason] += 1
        self.dead_letter(topic or self.topics.model, payload, reason, detail)

    def is_stale(self, now: float) -> bool:
        limit = self.config.max_model_age
        return limit is not None and abs(now - self.model.ts) > limit

    def serve_pending(self) -> None:
        """The turn's readings judged and predicted in one block; one message out per message
        in (called after each turn, and before a model is taken)."""
        if self._turn_messages >= BURST:
            self.full_turns += 1
            self._behind += 1
            self.node.say(BEHIND)  # retained, once: until an interval without a full turn
        self._turn_messages = 0
        if self.serving is None or not self.serving.pending:
            return
        before = self.serving.pipeline.accounting.admitted
        model = self.model
        served = self.serving.flush(model, None if model is None or not self.personal.taken
                                    else lambda ref: self.personal.params(model.params, *ref))
        if self.model is None:
            self.skipped["no_model_yet"] += self.serving.pipeline.accounting.admitted - before
            return
        now = time.time()
        stale = self.is_stale(now)
        if stale and self.config.stale == "drop":
            n = sum(len(s.seq) for s in served)
            self.skipped["stale_model"] += n
            self.stale_predictions += n
            return
        stamps: list[float] = []
        for one in served:
            self.publish(one, stale)
            self._lag = max(self._lag, now - min(one.ts))
            stamps += one.ts
        self.latency.observe_many([now - ts for ts in stamps])

    def publish(self, served: Served, stale: bool = False) -> None:
        site, device = served.ref
        model = self.model
        n = len(served.seq)
        self.predictions += n
        if served.batch:
            message = {"device": device, "target": model.target,
                       "model_version": model.version, "seq": served.seq, "ts": served.ts,
                       "prediction": served.prediction, "actual": served.actual}
        else:
            message = {"device": device, "seq": served.seq[0], "ts": served.ts[0],
                       "target": model.target, "prediction": served.prediction[0],
                       "actual": served.actual[0], "model_version": model.version}
        if model.kind == "binary":  # decided at the fleet's threshold (learners.imbalance)
            threshold = decision_threshold(model.notes)
            said = [int(p >= threshold) for p in served.prediction]
            message["decision"] = said if served.batch else said[0]
        if self.config.max_model_age is not None:
            message["stale"] = stale
            self.stale_predictions += n if stale else 0
        self.messages_out += 1
        self.node.publish(self.topics.prediction(site, device), encode_json(message),
                          qos=self.config.qos)

    def handle_error(self, topic: str, payload: bytes, exc: BaseException) -> None:
        self.skipped["internal_error"] += 1

    def counters(self) -> dict:
        books = self.serving.pipeline.accounting if self.serving else None
        behind, lag = self._behind, self._lag
        self._behind, self._lag = 0, 0.0
        if not behind:
            self.node.say()  # caught up: plain ``online`` again
        return {
            "partition": str(self.config.partition),
            "received": books.total if books else 0, "predictions": self.predictions,
            "prediction_messages": self.messages_out,
            "not_predicted": dict(books.rejected) if books else {},
            "skipped": dict(self.skipped), "foreign": self.foreign,
            "stale_predictions": self.stale_predictions, "models_refused": dict(self.refused),
            "personal_parts": len(self.personal.by_topic),
            "model_version": self.model.version if self.model else 0,
            "model_ts": self.model.ts if self.model else None,
            "prediction_latency": self.latency.as_dict(),
            "behind": behind, "full_turns": self.full_turns, "lag": round(lag, 4),
            "unacked": self.node.unacked,
        }

    def connect(self) -> None:
        warm()  # the compiled judge loaded before we listen, not on the first reading
        super().connect()

    def on_stop(self) -> None:
        self.serve_pending()
        self.publish_metrics()


def cleaning(config: PredictorConfig, kind: str | None):
    """The gateway's cleaning settings for ``kind``: a binary task refuses a target not 0/1,
    as the gateway does (so both judge every reading alike)."""
    return replace(config.cleaning, binary_target=kind == "binary")
