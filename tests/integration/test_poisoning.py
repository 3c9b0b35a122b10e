"""A poisoned learner against the real aggregator over a real mosquitto: robust merging holds,
garbage never reaches a broadcast, and a ruinous merge is rolled back."""

import numpy as np
import orjson
import pytest

from broker.messages import LinearParams, Scaler, Update
from broker.model_codec import decode_model, encode_update
from broker.topics import Topics
from learners.aggregator import Aggregator, AggregatorConfig
from learners.federation import FederationConfig
from learners.registry import build_strategy
from learners.strategies import MergeRule, SyncRounds
from tests.mqtt_helpers import Recorder, ServiceThread

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TRUTH = np.array([2.0, -1.0])
LEARNERS = [f"gw-{i}" for i in range(5)]


def honest(learner: str, seq: int, base: int, rng, loss: float = 0.5) -> bytes:
    w = TRUTH + rng.normal(0.0, 0.02, 2)
    return encode_update(Update(learner, seq, base, 100, "y", LinearParams(("a", "b"), w, 1.0),
                                0.0, Scaler(100, np.zeros(3), np.ones(3)),
                                metrics={"recent_loss": loss, "recent_n": 100}))


def x100(payload: bytes) -> bytes:
    obj = orjson.loads(payload)
    obj["weights"] = [100 * w for w in obj["weights"]]
    return orjson.dumps(obj)


def flip(payload: bytes) -> bytes:
    obj = orjson.loads(payload)
    obj["weights"] = [-w for w in obj["weights"]]
    obj["intercept"] = -obj["intercept"]
    return orjson.dumps(obj)


def nan(payload: bytes) -> bytes:
    obj = orjson.loads(payload)
    obj["weights"] = [123456.0, 654321.0]
    return orjson.dumps(obj).replace(b"123456.0", b"NaN")


def wrong_shape(payload: bytes) -> bytes:
    obj = orjson.loads(payload)
    obj["weights"] = [*obj["weights"], 1.0]
    return orjson.dumps(obj)


def run_rounds(address, prefix, federation: FederationConfig, poison, rounds: int = 4):
    """Five learners send ``rounds`` updates each, gw-4's through ``poison``; every model
    broadcast and every dead letter."""
    topics = Topics(prefix)
    watcher = Recorder(address, topics.model, topics.deadletter_filter)
    rng = np.random.default_rng(3)
    config = AggregatorConfig(federation=federation)
    with ServiceThread(Aggregator(config, topics, address)):
        for seq in range(1, rounds + 1):
            base = len(watcher.on("/learn/model"))
            for learner in LEARNERS:
                payload = honest(learner, seq, base, rng)
                if learner == "gw-4":
                    payload = poison(payload)
                watcher.publish(topics.update(learner), payload)
            watcher.wait(lambda b=base: len(watcher.on("/learn/model")) > b, what="a model")
        reason = {nan: "non_finite", wrong_shape: "wrong_shape"}.get(poison)
        watcher.wait(lambda: reason is None or sum(
            orjson.loads(p)["reason"] == reason for p in watcher.on("/deadletter/")) >= rounds,
            what=f"{rounds} updates refused as {reason}")
    models = [decode_model(p) for p in watcher.on("/learn/model")]
    letters = [orjson.loads(p)["reason"] for p in watcher.on("/deadletter/")]
    watcher.close()
    return models, letters


@pytest.mark.parametrize("poison", [x100, flip])
@pytest.mark.parametrize(("strategy", "rule"), [("sync", "median"), ("sync", "trimmed"),
                                                ("fedbuff", "median")])
def test_a_robust_strategy_keeps_the_model_near_the_clean_run(address, prefix, poison,
                                                               strategy, rule):
    clean, _ = run_rounds(address, prefix + "c",
                          FederationConfig(SyncRounds(round_timeout=30), quorum=5), lambda p: p)
    attacked, _ = run_rounds(address, prefix + "a", FederationConfig(
        build_strategy(strategy, {"buffer": 5, "round_timeout": 30, "merge_rule": MergeRule(rule)}),
        quorum=5, rollback_factor=0), poison)
    a, c = attacked[-1].params.weights, clean[-1].params.weights
    assert np.linalg.norm(a - c) / np.linalg.norm(c) < 0.10


@pytest.mark.parametrize("poison", [nan, wrong_shape])
@pytest.mark.parametrize("strategy", ["sync", "fedasync", "fedbuff"])
def test_nan_or_a_wrong_shape_never_reaches_a_broadcast(address, prefix, poison, strategy):
    models, letters = run_rounds(address, prefix, FederationConfig(
        build_strategy(strategy, {"buffer": 4, "round_timeout": 0.5}), quorum=5), poison)
    assert models and all(np.isfinite(m.params.weights).all() and len(m.params.weights) == 2
                          for m in models)
    assert all("gw-4" not in m.contributors for m in models)
    assert letters.count("non_finite" if poison is nan else "wrong_shape") == 4


def test_a_merge_that_ruins_the_fleet_is_rolled_back_with_the_reason(address, prefix):
    # Prepare: two learners; round 2 is poisoned by gw-1 under the plain mean
    topics = Topics(prefix)
    watcher = Recorder(address, topics.model)
    rng = np.random.default_rng(0)
    config = AggregatorConfig(federation=FederationConfig(SyncRounds(round_timeout=30), quorum=2))

    def send(seq, base, loss, poison=lambda p: p):
        for learner in ("gw-0", "gw-1"):
            payload = honest(learner, seq, base, rng, loss)
            watcher.publish(topics.update(learner), poison(payload) if learner == "gw-1"
                            else payload)
        watcher.wait(lambda: len(watcher.on("/learn/model")) > base, what=f"model {base + 1}")

    with ServiceThread(Aggregator(config, topics, address)):
        # Execute
        send(1, 0, loss=0.5)
        send(2, 1, loss=0.5, poison=x100)
        send(3, 2, loss=60.0)  # what the fleet saw while it used the poisoned model
    # Assert
    good, bad, back = (decode_model(p) for p in watcher.on("/learn/model"))
    assert back.version == 3 and back.notes["rollback"]["to_version"] == 1
    assert "version 2" in back.notes["rollback"]["reason"]
    assert back.params.weights.tolist() == good.params.weights.tolist()
    assert np.linalg.norm(bad.params.weights) > 10 * np.linalg.norm(good.params.weights)
    watcher.close()
