"""The predictor process: the current model plus readings in, predictions out.

It needs nothing but the model message to predict: weights travel in raw feature units.
Each prediction carries the version of the model that made it. It lives with the gateway
because it builds the same features (:mod:`gateway.features`); it loads neither numba nor
river (the sigmoid comes from :mod:`learners.link`).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

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

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictorConfig:
    node_id: str = "predictor"
    sites: tuple[str, ...] = ()
    metrics_interval: float = 1.0
    max_payload: int = MAX_PAYLOAD_BYTES
    keyring: Keyring | None = None  # with a trust file: only models an aggregator signed
    keys_interval: float = 1.0  # seconds between checks for a changed trust file


class Predictor(Service):
    kind = "predictor"

    def __init__(self, config: PredictorConfig, topics: Topics, broker: BrokerAddress) -> None:
        self.config = config
        self.model: Model | None = None
        self.features: FeatureBuilder | None = None
        self.predictions = 0
        self.skipped: Counter[str] = Counter()
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
            except SignatureRefused as exc:
                self.refuse(payload, f"model_{exc.reason}", exc.detail)
                return
            except DecodeError:
                self.skipped["bad_model"] += 1
                return
            if signer is not None and self.model and model.version < self.model.version:
                self.refuse(payload, "model_replayed",
                            f"v{model.version} after v{self.model.version}")
                return
            if self.model is None or model.version > self.model.version:
                if self.model is None or self.model.params.features != model.params.features:
                    self.features = FeatureBuilder(FeatureSpec(model.params.features,
                                                               model.target))
                self.model = model
                log.info("%s: model v%d adopted", self.node_id, model.version,
                         extra={"node": self.node_id, "version": model.version})
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

    def predict(self, site: str, device: str, reading) -> None:
        model = self.model
        values = dict(reading.values)
        values.setdefault(model.target, float("nan"))  # the target is not needed to predict
        try:
            x, actual = self.features(values, reading.ts, device, site)
        except Rejected as exc:
            self.skipped[exc.reason] += 1
            return
        value = output(model.kind, float(x @ model.params.weights + model.params.intercept))
        self.publish(site, device, reading.seq, reading.ts, value,
                     None if actual != actual else actual)

    def publish(self, site: str, device: str, seq: int, ts: float, value: float,
                actual: float | None) -> None:
        self.predictions += 1
        self.node.publish(self.topics.prediction(site, device), encode_json({
            "device": device, "seq": seq, "ts": ts, "target": self.model.target,
            "prediction": value, "actual": actual, "model_version": self.model.version,
        }))

    def refuse(self, payload: bytes, reason: str, detail: str) -> None:
        """A model refused for its signature or as a replay: counted and dead-lettered."""
        if not self.skipped[reason]:
            log.warning("%s: model refused: %s (%s)", self.node_id, reason, detail,
                        extra={"node": self.node_id, "reason": reason})
        self.skipped[reason] += 1
        self.dead_letter(self.topics.model, payload, reason, detail)

    def handle_error(self, topic: str, payload: bytes, exc: BaseException) -> None:
        self.skipped["internal_error"] += 1

    def counters(self) -> dict:
        return {
            "predictions": self.predictions, "skipped": dict(self.skipped),
            "model_version": self.model.version if self.model else 0,
        }
