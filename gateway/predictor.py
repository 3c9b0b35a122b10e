"""The predictor process: the current model plus readings in, predictions out.

It needs nothing but the model message to predict: weights travel in raw feature units.
Each prediction carries the version of the model that made it. It lives with the gateway
because it builds the same features (:mod:`gateway.features`); it loads neither numba nor
river (the sigmoid comes from :mod:`learners.link`).

Models are judged as a gateway judges them (:mod:`learners.model_admission`; its task is the
first adopted model's); a refused one is counted by reason and dead-lettered, and predictions go
on with the current model. With ``max_model_age`` a model older than that (now minus its own
``ts``, or as far ahead: a clock that far off is no clock to trust) is stale: each prediction
then says ``"stale": true`` (``stale="mark"``, every prediction has the field) or is not sent
(``"drop"``), counted either way.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from broker.address import BrokerAddress
from broker.keyring import Keyring, SignatureRefused
from broker.messages import Model
from broker.model_codec import decode_model
from broker.reading_codec import decode_reading_items
from broker.service import Service
from broker.topics import TopicError, Topics
from broker.wire import MAX_PAYLOAD_BYTES, DecodeError, encode_json
from gateway.features import FeatureBuilder, FeatureSpec
from gateway.validation import Rejected
from learners.link import output
from learners.model_admission import SAME, ModelAdmission, ModelBounds

#: What a stale model's predictions become: said so, or not sent.
STALE_POLICIES = ("mark", "drop")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictorConfig:
    node_id: str = "predictor"
    sites: tuple[str, ...] = ()
    metrics_interval: float = 1.0
    max_payload: int = MAX_PAYLOAD_BYTES
    keyring: Keyring | None = None  # with a trust file: only models an aggregator signed
    keys_interval: float = 1.0  # seconds between checks for a changed trust file
    model_bounds: ModelBounds = field(default_factory=ModelBounds)
    #: Seconds a model may be old (by its own ``ts``) and still be served fresh; None: any.
    max_model_age: float | None = None
    stale: str = "mark"

    def __post_init__(self) -> None:
        if self.stale not in STALE_POLICIES:
            raise ValueError(f"stale must be one of {', '.join(STALE_POLICIES)}")
        if self.max_model_age is not None and not self.max_model_age > 0:
            raise ValueError("the max model age must be > 0 seconds")


class Predictor(Service):
    kind = "predictor"

    def __init__(self, config: PredictorConfig, topics: Topics, broker: BrokerAddress) -> None:
        self.config = config
        self.model: Model | None = None
        self.features: FeatureBuilder | None = None
        self.admission = ModelAdmission(config.model_bounds)
        self.predictions = 0
        self.stale_predictions = 0  # sent marked stale, or (drop) counted in skipped
        self.skipped: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()  # models, by reason
        filters = [topics.readings_filter(s) for s in config.sites] or [topics.readings_filter()]
        super().__init__(config.node_id, topics, broker,
                         metrics_interval=config.metrics_interval,
                         subscriptions=[(topics.model, 1), *((f, 0) for f in filters)],
                         kept_session=True)
        self.keys = config.keyring or Keyring()
        self.node.every(config.keys_interval, self.keys.refresh)

    def handle(self, topic: str, payload: bytes) -> None:
        if topic == self.topics.model:
            try:
                body, signer = self.keys.check(payload, "model", "aggregator")
                model = decode_model(body, self.config.max_payload)
            except (DecodeError, SignatureRefused) as exc:
                self.refuse(payload, f"model_{exc.reason}", str(exc))
                return
            if signer is not None and self.model and model.version < self.model.version:
                self.refuse(payload, "model_replayed",
                            f"v{model.version} after v{self.model.version}")
                return
            self.take_model(model, payload)
            return
        try:
            site, device, _ = self.topics.parse_device_topic(topic)
            items = decode_reading_items(payload, self.config.max_payload)
        except (TopicError, DecodeError):
            self.skipped["bad_reading"] += 1
            return
        for reading in items:
            if isinstance(reading, DecodeError):
                self.skipped["bad_reading"] += 1
            elif self.model is None:
                self.skipped["no_model_yet"] += 1
            else:
                self.predict(site, device, reading)

    def take_model(self, model: Model, payload: bytes) -> None:
        refused = self.admission.judge(model)  # learners.model_admission: the one judge
        if refused is SAME:
            return
        if refused is not None:
            self.refuse(payload, *refused)
            return
        if self.model is None:  # the task is fixed from now on (the admission holds it)
            self.features = FeatureBuilder(FeatureSpec(model.params.features, model.target))
        self.model = model
        self.admission.adopted(model)
        log.info("%s: model v%d adopted", self.node_id, model.version,
                 extra={"node": self.node_id, "version": model.version})

    def refuse(self, payload: bytes, reason: str, detail: str) -> None:
        """Count and dead-letter a model not taken (a WARNING the first time for each reason)."""
        log.log(logging.DEBUG if reason in self.refused else logging.WARNING,
                "%s: model refused: %s (%s)", self.node_id, reason, detail,
                extra={"node": self.node_id, "reason": reason})
        self.refused[reason] += 1
        self.dead_letter(self.topics.model, payload, reason, detail)

    def is_stale(self, now: float) -> bool:
        limit = self.config.max_model_age
        return limit is not None and abs(now - self.model.ts) > limit

    def predict(self, site: str, device: str, reading) -> None:
        model = self.model
        stale = self.is_stale(time.time())
        if stale and self.config.stale == "drop":
            self.skipped["stale_model"] += 1
            self.stale_predictions += 1
            return
        values = dict(reading.values)
        values.setdefault(model.target, float("nan"))  # the target is not needed to predict
        try:
            x, actual = self.features(values, reading.ts, device, site)
        except Rejected as exc:
            self.skipped[exc.reason] += 1
            return
        value = output(model.kind, float(x @ model.params.weights + model.params.intercept))
        self.publish(site, device, reading.seq, reading.ts, value,
                     None if actual != actual else actual, stale)

    def publish(self, site: str, device: str, seq: int, ts: float, value: float,
                actual: float | None, stale: bool = False) -> None:
        self.predictions += 1
        message = {"device": device, "seq": seq, "ts": ts, "target": self.model.target,
                   "prediction": value, "actual": actual, "model_version": self.model.version}
        if self.config.max_model_age is not None:
            message["stale"] = stale
            self.stale_predictions += stale
        self.node.publish(self.topics.prediction(site, device), encode_json(message))

    def handle_error(self, topic: str, payload: bytes, exc: BaseException) -> None:
        self.skipped["internal_error"] += 1

    def counters(self) -> dict:
        return {
            "predictions": self.predictions, "skipped": dict(self.skipped),
            "stale_predictions": self.stale_predictions, "models_refused": dict(self.refused),
            "model_version": self.model.version if self.model else 0,
        }
