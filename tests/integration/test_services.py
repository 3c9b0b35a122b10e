"""Single services in-process against a real mosquitto: what goes in, what comes out."""

import time

import numpy as np
import orjson
import pytest

from broker.messages import LinearParams, Model, Reading, Scaler, Update
from broker.model_codec import decode_model, decode_update, encode_model, encode_update
from broker.reading_codec import encode_reading
from broker.topics import Topics
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from gateway.predictor import Predictor, PredictorConfig
from gateway.service import Gateway
from learners.aggregator import Aggregator, AggregatorConfig
from learners.federation import FederationConfig
from learners.strategies import SyncRounds
from tests.mqtt_helpers import Recorder, ServiceThread

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

SPEC = FeatureSpec(("a", "b"), "y")


def reading(seq, device="s0-d1", ts=None, **values):
    ts = time.time() if ts is None else ts
    return encode_reading(Reading(device, seq, ts, values or {"a": 1.0, "b": 2.0, "y": 3.0}))


def test_gateway_learns_rejects_with_reasons_and_syncs(address, prefix):
    topics = Topics(prefix)
    watcher = Recorder(address, topics.updates_filter, topics.deadletter_filter)
    config = GatewayConfig("gw-0", SPEC, sync_every=5, sync_interval=60)
    with ServiceThread(Gateway(config, topics, address)) as gw:
        good = [reading(i, a=float(i), b=1.0, y=2.0 * i) for i in range(5)]
        bad = [b"{broken", b'{"device":"s0-d1","seq":1,"ts":1,"values":{"a":"x"}}',
               reading(9, device="s0-d2"), reading(10, a=1.0, b=1.0)]
        for payload in good + bad:
            watcher.publish(topics.reading("s0", "s0-d1"), payload)
        watcher.wait(lambda: len(watcher.on("/deadletter/")) == 4 and watcher.on("/update/"),
                     what="four dead letters and an update")
        assert gw.learned == 5 and gw.pipeline.accounting.total == 9
        assert dict(gw.pipeline.accounting.rejected) == {
            "malformed": 1, "schema": 1, "id_mismatch": 1, "missing_channel": 1}
    update = decode_update(watcher.on("/update/")[0])
    assert update.learner == "gw-0" and update.n == 5 and update.base_version == 0
    letters = [orjson.loads(p) for p in watcher.on("/deadletter/")]
    assert {d["reason"] for d in letters} == set(gw.pipeline.accounting.rejected)
    assert all(d["excerpt"] and d["topic"] for d in letters)
    watcher.close()


def test_aggregator_merges_at_quorum_and_publishes_retained_versions(address, prefix):
    topics = Topics(prefix)
    watcher = Recorder(address, topics.model, topics.deadletter_filter)
    config = AggregatorConfig(federation=FederationConfig(SyncRounds(round_timeout=30), quorum=2))
    with ServiceThread(Aggregator(config, topics, address)):
        for learner, w, n in (("gw-0", [1.0, 1.0], 10), ("gw-1", [4.0, -2.0], 30)):
            params = LinearParams(("a", "b"), np.array(w), 0.0)
            watcher.publish(topics.update(learner), encode_update(
                Update(learner, 1, 0, n, "y", params, 0.0, Scaler(n, np.ones(3), np.ones(3)))))
        watcher.wait(lambda: watcher.on("/learn/model"), what="model v1")
        stale = Update("gw-0", 2, 0, 5, "y", LinearParams(("a", "b"), np.ones(2), 0.0), 0.0,
                       Scaler.empty(3))
        watcher.publish(topics.update("gw-0"), encode_update(stale))
        watcher.wait(lambda: watcher.on("/deadletter/"), what="the stale update refused")
    model = decode_model(watcher.on("/learn/model")[0])
    assert model.version == 1 and model.contributors == ("gw-0", "gw-1") and model.n == 40
    assert model.params.weights.tolist() == pytest.approx([3.25, -1.25])
    assert model.scaler.count == 40 and model.scaler.mean.tolist() == [1.0, 1.0, 1.0]
    assert orjson.loads(watcher.on("/deadletter/")[0])["reason"] == "stale"
    watcher.close()


def test_predictor_tags_predictions_with_the_model_version(address, prefix):
    topics = Topics(prefix)
    watcher = Recorder(address, topics.predictions_filter)
    model = Model(7, 0.0, 100, ("gw-0",), "y", LinearParams(("a", "b"), np.array([2.0, 1.0]),
                                                           0.5), Scaler.empty(3))
    watcher.publish(topics.model, encode_model(model), retain=True)
    watcher.node.flush(5)
    with ServiceThread(Predictor(PredictorConfig(), topics, address)) as predictor:
        watcher.wait(lambda: predictor.model is not None, what="the retained model")
        ts = time.time()  # the gateway's clock window holds for the predictor too
        watcher.publish(topics.reading("s0", "s0-d1"), reading(3, ts=ts, a=1.0, b=1.0, y=4.0))
        watcher.wait(lambda: watcher.on("/prediction"), what="a prediction")
    p = orjson.loads(watcher.on("s0/s0-d1/prediction")[0])
    assert p == {"device": "s0-d1", "seq": 3, "ts": ts, "target": "y", "prediction": 3.5,
                 "actual": 4.0, "model_version": 7}
    watcher.close()
