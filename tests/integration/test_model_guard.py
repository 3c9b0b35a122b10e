"""Issue 13's attacks on a real gateway and predictor over a real mosquitto: a forger publishes
retained models (version 1000000 with weights 1e6, another task, an old version) and a reading
with seq 2**62; each is refused, counted and dead-lettered, and predictions and learning go on
with the real models. Also: a predictor's stale models (--max-model-age, --stale)."""

import os
import subprocess
import sys
import time

import numpy as np
import orjson
import pytest

from broker.messages import LinearParams, Model, Reading, Scaler
from broker.model_codec import encode_model
from broker.reading_codec import encode_reading
from broker.topics import Topics
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from gateway.predictor import Predictor, PredictorConfig
from gateway.service import Gateway
from tests.mqtt_helpers import Recorder, ServiceThread

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SPEC = FeatureSpec(("a", "b"), "y")


def model(version: int, w=(2.0, 1.0), features=("a", "b"), kind="regression", target="y",
          ts: float | None = None) -> bytes:
    params = LinearParams(features, np.array(w[:len(features)], float), 0.5)
    return encode_model(Model(version, time.time() if ts is None else ts, 100, ("gw-0",),
                              target, params, Scaler(100, np.zeros(len(features) + 1),
                                                     np.ones(len(features) + 1)), kind))


def reading(seq: int, device: str = "s0-d1") -> bytes:
    return encode_reading(Reading(device, seq, time.time(), {"a": 1.0, "b": 1.0, "y": 4.0}))


def letters(watcher: Recorder, node: str) -> list[str]:
    return [orjson.loads(p)["reason"] for p in watcher.on(f"/deadletter/{node}")]


def test_forged_models_are_refused_by_gateway_and_predictor(address, prefix):
    topics = Topics(prefix)
    forger = Recorder(address, topics.predictions_filter, topics.deadletter_filter)
    forger.publish(topics.model, model(1), retain=True)
    forger.node.flush(5)
    config = GatewayConfig("gw-0", SPEC, sync_every=1000, sync_interval=60)
    with (ServiceThread(Gateway(config, topics, address)) as gw,
          ServiceThread(Predictor(PredictorConfig(), topics, address)) as predictor):
        forger.wait(lambda: gw.local.base_version == 1 and predictor.model is not None,
                    what="both on the real model v1")
        attacks = [model(1_000_000, w=(1e6, 1e6)), model(2, features=("a", "c")),
                   model(2, kind="binary"), model(2, target="z"), model(2, w=(1e12, 1.0)),
                   model(2).replace(b'"weights":[2.0', b'"weights":[NaN')]
        for payload in attacks:
            forger.publish(topics.model, payload, retain=True)
        expected = ["model_version_jump", "model_features", "model_kind", "model_target",
                    "model_out_of_range", "model_non_finite"]
        forger.wait(lambda: len(letters(forger, "gw-0")) == len(expected) == len(
            letters(forger, "predictor")), what="every forged model refused by both")
        assert letters(forger, "gw-0") == expected == letters(forger, "predictor")
        assert gw.local.base_version == 1 and predictor.model.version == 1
        assert gw.other_rejected == {reason: 1 for reason in expected}
        assert predictor.refused == {reason: 1 for reason in expected}
        # predictions and learning go on with the real model
        for seq in range(5):
            forger.publish(topics.reading("s0", "s0-d1"), reading(seq))
        forger.wait(lambda: gw.learned == 5 and len(forger.on("/prediction")) == 5,
                    what="5 learned, 5 predicted")
        assert {orjson.loads(p)["model_version"] for p in forger.on("/prediction")} == {1}
        assert {orjson.loads(p)["prediction"] for p in forger.on("/prediction")} == {3.5}
        # the real aggregator's next model is taken; a replay of an older one is not
        forger.publish(topics.model, model(2, w=(1.0, 1.0)), retain=True)
        forger.wait(lambda: gw.local.base_version == 2 and predictor.model.version == 2,
                    what="both on the real v2")
        forger.publish(topics.model, model(1), retain=True)
        forger.wait(lambda: letters(forger, "gw-0")[-1:] == ["model_old"] == letters(
            forger, "predictor")[-1:], what="the replayed v1 refused by both")
        forger.publish(topics.reading("s0", "s0-d1"), reading(5))
        forger.wait(lambda: gw.learned == 6 and len(forger.on("/prediction")) == 6,
                    what="the 6th reading learned and predicted")
        last = orjson.loads(forger.on("/prediction")[-1])
        assert last["model_version"] == 2 and last["prediction"] == 2.5
        assert predictor.counters()["models_refused"]["model_old"] == 1
    forger.publish(topics.model, b"", retain=True)  # no retained model left behind
    forger.close()


def test_a_late_node_replaces_a_forged_retained_model_with_the_real_next(address, prefix):
    """A node that starts while a forgery is retained has nothing to judge it by: it takes it
    provisionally, and the aggregator's next model (lower) replaces it; then lower is old."""
    topics = Topics(prefix)
    forger = Recorder(address, topics.predictions_filter, topics.deadletter_filter)
    forger.publish(topics.model, model(1_000_000, w=(1e6, 1e6)), retain=True)
    forger.node.flush(5)
    config = GatewayConfig("gw-0", SPEC, sync_every=1000, sync_interval=60)
    with (ServiceThread(Gateway(config, topics, address)) as gw,
          ServiceThread(Predictor(PredictorConfig(), topics, address)) as predictor):
        forger.wait(lambda: gw.local.base_version == 1_000_000 and predictor.model is not None,
                    what="both on the retained model, provisionally")
        forger.publish(topics.model, model(7), retain=True)  # the real aggregator's
        forger.wait(lambda: gw.local.base_version == 7 and predictor.model.version == 7,
                    what="both on the real v7")
        forger.publish(topics.model, model(8), retain=True)
        forger.wait(lambda: gw.local.base_version == 8 and predictor.model.version == 8,
                    what="both on the real v8")
        forger.publish(topics.model, model(1_000_000, w=(1e6, 1e6)), retain=True)
        forger.wait(lambda: letters(forger, "gw-0") == ["model_version_jump"] == letters(
            forger, "predictor"), what="the forgery refused by both now")
        forger.publish(topics.reading("s0", "s0-d1"), reading(0))
        forger.wait(lambda: forger.on("/prediction"), what="a prediction")
        assert orjson.loads(forger.on("/prediction")[0])["model_version"] == 8
        assert gw.local.base_version == 8
    forger.publish(topics.model, b"", retain=True)
    forger.close()


def test_one_reading_with_seq_2_62_neither_mutes_its_device_nor_counts_gaps(address, prefix):
    topics = Topics(prefix)
    forger = Recorder(address, topics.deadletter_filter)
    config = GatewayConfig("gw-0", SPEC, sync_every=1000, sync_interval=60)
    with ServiceThread(Gateway(config, topics, address)) as gw:
        for seq in (0, 1, 2, 2**62, 3, 4, 5):
            forger.publish(topics.reading("s0", "s0-d1"), reading(seq))
        # the gateway's thread counts a block, then learns it: wait for both
        forger.wait(lambda: gw.pipeline.accounting.total == 7 and gw.learned == 6,
                    what="7 readings judged, 6 learned")
        forger.wait(lambda: letters(forger, "gw-0") == ["seq_jump"], what="its dead letter")
    # stopped: nothing moves any more (the last readings were learned, none is a gap)
    counters = gw.counters()
    assert counters["learned"] == 6 and counters["rejected"] == {"seq_jump": 1}
    assert counters["gaps"] == 0 and gw.pipeline.quality()["s0-d1"]["gaps"] == 0
    forger.close()


@pytest.mark.parametrize("policy", ["mark", "drop"])
def test_a_predictor_does_not_serve_an_old_model_as_fresh(address, prefix, policy):
    topics = Topics(prefix)
    watcher = Recorder(address, topics.predictions_filter)
    config = PredictorConfig(max_model_age=60.0, stale=policy)
    with ServiceThread(Predictor(config, topics, address)) as predictor:
        watcher.publish(topics.model, model(1, ts=time.time() - 3600))  # an hour old
        watcher.wait(lambda: predictor.model is not None, what="model v1")
        watcher.publish(topics.reading("s0", "s0-d1"), reading(0))
        watcher.wait(lambda: predictor.stale_predictions == 1, what="a stale prediction")
        watcher.publish(topics.model, model(2, ts=time.time() + 3600))  # from the future
        watcher.wait(lambda: predictor.model.version == 2, what="model v2")
        watcher.publish(topics.reading("s0", "s0-d1"), reading(1))
        watcher.wait(lambda: predictor.stale_predictions == 2, what="a second stale one")
        watcher.publish(topics.model, model(3))  # fresh
        watcher.wait(lambda: predictor.model.version == 3, what="model v3")
        watcher.publish(topics.reading("s0", "s0-d1"), reading(2))
        watcher.wait(lambda: predictor.predictions == (3 if policy == "mark" else 1),
                     what="the fresh model's prediction")
        watcher.wait(lambda: len(watcher.on("/prediction")) == predictor.predictions,
                     what="every prediction sent")
    sent = [orjson.loads(p) for p in watcher.on("/prediction")]
    if policy == "mark":
        assert [(p["model_version"], p["stale"]) for p in sent] == [
            (1, True), (2, True), (3, False)]
        assert predictor.skipped == {}
    else:
        assert [(p["model_version"], p["stale"]) for p in sent] == [(3, False)]
        assert predictor.skipped == {"stale_model": 2}
    assert predictor.counters()["stale_predictions"] == 2
    watcher.close()


def test_the_predict_command_takes_its_freshness_and_model_options(address, prefix):
    """`fleetlearn predict --max-model-age 60 --stale mark --max-version-jump 5` as a process:
    an old model's prediction says stale, a jump of 100 versions is dead-lettered."""
    topics = Topics(prefix)
    watcher = Recorder(address, topics.predictions_filter, topics.deadletter_filter,
                       topics.node_status("predictor"))
    watcher.publish(topics.model, model(1, ts=time.time() - 3600), retain=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetlearn", "predict", "--broker", str(address), "--prefix",
         prefix, "--max-model-age", "60", "--stale", "mark", "--max-version-jump", "5",
         "--features", "a,b", "--target", "y"],
        stderr=subprocess.PIPE, env={**os.environ, "FLEETLEARN_CONNECT_TIMEOUT": "5"})
    try:
        watcher.wait(lambda: watcher.on("/learn/status/") == [b"online"], timeout=20,
                     what="the predictor online")
        watcher.publish(topics.model, model(101))
        watcher.wait(lambda: letters(watcher, "predictor") == ["model_version_jump"],
                     what="the jump refused")
        watcher.publish(topics.reading("s0", "s0-d1"), reading(0))
        watcher.wait(lambda: watcher.on("/prediction"), what="a prediction")
    finally:
        proc.terminate()
        proc.wait(10)
    assert orjson.loads(watcher.on("/prediction")[0]) == {
        "device": "s0-d1", "seq": 0, "ts": pytest.approx(time.time(), abs=30), "target": "y",
        "prediction": 3.5, "actual": 4.0, "model_version": 1, "stale": True}
    watcher.close()
