"""The attacks of issue #13 on the aggregator, against a real mosquitto, without keys: forged
models (retained at start, or during the run), an update with seq 2**62 under a real
gateway's id, and a new learner id claiming n = 1,000,000."""

from __future__ import annotations

import time

import numpy as np
import orjson
import pytest

from broker.messages import LinearParams, Model, Scaler, Update
from broker.model_codec import decode_model, encode_model, encode_update
from broker.topics import Topics
from learners.aggregator import Aggregator, AggregatorConfig
from learners.federation import FederationConfig
from learners.strategies import SyncRounds
from tests.mqtt_helpers import Recorder, ServiceThread

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

FEATURES = ("a", "b")


def update(learner: str, seq: int, base: int, n: int = 10, w=(2.0, -1.0),
           loss: float = 0.5) -> bytes:
    return encode_update(Update(learner, seq, base, n, "y",
                                LinearParams(FEATURES, np.array(w, float), 0.0), time.time(),
                                Scaler(n, np.zeros(3), np.ones(3)),
                                metrics={"recent_loss": loss, "recent_n": n}))


def forged_big() -> bytes:
    return encode_model(Model(1_000_000, time.time(), 10**6, ("gw-0",), "y",
                              LinearParams(FEATURES, np.full(2, 1e6), 1e6),
                              Scaler(10, np.zeros(3), np.ones(3))))


def forged_other_task() -> bytes:
    return encode_model(Model(5, time.time(), 10, ("gw-0",), "power",
                              LinearParams(("temp",), np.ones(1), 0.0),
                              Scaler(10, np.zeros(2), np.ones(2)), kind="binary"))


def forged_huge_version() -> bytes:
    obj = orjson.loads(forged_big())
    obj["version"] = 2**64 - 1
    return orjson.dumps(obj)


FORGED = {"v1000000": forged_big, "other_task": forged_other_task,
          "v2**64-1": forged_huge_version}


def aggregator(address, prefix, state_dir=None, quorum_override: int = 1,
               round_timeout: float = 30.0, **federation) -> Aggregator:
    config = FederationConfig(SyncRounds(round_timeout=round_timeout), quorum=quorum_override,
                              **federation)
    return Aggregator(AggregatorConfig(federation=config, state_dir=state_dir), Topics(prefix),
                      address)


def retained(address, topics: Topics) -> Model:
    fresh = Recorder(address, topics.model)
    fresh.wait(lambda: fresh.messages, 5, "the retained model")
    fresh.close()
    return decode_model(fresh.messages[0][1])


def reasons(watcher: Recorder) -> list[str]:
    return [orjson.loads(p)["reason"] for p in watcher.on("/deadletter/")]


@pytest.mark.parametrize("forged", sorted(FORGED))
@pytest.mark.parametrize("checkpoint", [True, False], ids=["checkpoint", "scratch"])
def test_a_forged_retained_model_is_refused_at_start_and_replaced(address, prefix, tmp_path,
                                                                  forged, checkpoint):
    # Prepare: an earlier run of this aggregator made v1, v2 (checkpointed, or not)
    topics = Topics(prefix)
    watcher = Recorder(address, topics.model, topics.deadletter_filter)
    state = tmp_path / "agg" if checkpoint else None
    agg = aggregator(address, prefix, state)
    with ServiceThread(agg):
        for seq in (1, 2):
            watcher.publish(topics.update("gw-0"), update("gw-0", seq, seq - 1))
            watcher.wait(lambda s=seq: agg.checkpointed == s if checkpoint
                         else agg.federation.version == s, what=f"v{seq}")
    # Execute: an attacker retains a forged model; the aggregator starts again; a real update
    watcher.publish(topics.model, FORGED[forged](), retain=True)
    watcher.wait(lambda: len(watcher.on(topics.model)) >= 3, what="the forged model")
    agg = aggregator(address, prefix, state)
    base = 2 if checkpoint else 0
    with ServiceThread(agg):
        watcher.wait(lambda: agg.resumed, what="the retained model read")
        # (twice, maybe: the retained copy, and the one its kept session queued meanwhile)
        assert set(agg.refused) == {"model_not_ours"} and agg.federation.version == base
        watcher.publish(topics.update("gw-0"), update("gw-0", 3, base))
        watcher.wait(lambda: agg.federation.version == base + 1, what="the next model")
        # Assert: the broker's retained model is the aggregator's next one, not the forged one
        watcher.wait(lambda: retained(address, topics).version == base + 1, 10,
                     "the next model retained")
    final = retained(address, topics)
    watcher.wait(lambda: "model_not_ours" in reasons(watcher), what="the dead letter")
    watcher.close()
    assert np.allclose(final.params.weights, [2.0, -1.0]) and final.params.features == FEATURES
    assert agg.accepted == 1 and set(agg.refused) == {"model_not_ours"}


def test_a_forged_model_during_the_run_changes_nothing(address, prefix):
    topics = Topics(prefix)
    watcher = Recorder(address, topics.deadletter_filter)
    agg = aggregator(address, prefix)
    with ServiceThread(agg):
        watcher.wait(lambda: agg.resumed, what="the start")
        watcher.publish(topics.update("gw-0"), update("gw-0", 1, 0))
        watcher.wait(lambda: agg.federation.version == 1, what="v1")
        # Execute: a model of another task, then one with version 2**64-1, then real updates
        for forged in (forged_other_task, forged_huge_version, forged_big):
            watcher.publish(topics.model, forged(), retain=True)
        watcher.wait(lambda: agg.refused.get("model_not_ours") == 3, what="three refusals")
        for seq in (2, 3):
            watcher.publish(topics.update("gw-0"), update("gw-0", seq, seq - 1))
            watcher.wait(lambda s=seq: agg.federation.version == s, what=f"v{seq}")
        # Assert: every real update was merged, and the retained model is the aggregator's
        assert agg.accepted == 3 and agg.refused == {"model_not_ours": 3}
        assert agg.federation.ledger.features == FEATURES
        watcher.wait(lambda: retained(address, topics).version == 3, 10, "v3 retained")
    watcher.wait(lambda: reasons(watcher).count("model_not_ours") == 3, what="dead letters")
    watcher.close()


@pytest.mark.parametrize("guard", ["roster", "rate"])
def test_forged_updates_cannot_mute_a_gateway_or_take_over_the_model(address, prefix, guard):
    topics = Topics(prefix)
    watcher = Recorder(address, topics.deadletter_filter)
    # 10,000 samples/s: the forged n = 1,000,000 would need 100 s since the start
    roster = {"learners": ("gw-0", "gw-1")} if guard == "roster" else {"max_rate": 10_000.0}
    agg = aggregator(address, prefix, **roster)
    with ServiceThread(agg):
        watcher.wait(lambda: agg.resumed, what="the start")
        watcher.publish(topics.update("gw-0"), update("gw-0", 1, 0))
        watcher.wait(lambda: agg.federation.version == 1, what="v1")
        # Execute: seq 2**62 under gw-0's id; a new id with n = 1,000,000 and a tiny loss
        watcher.publish(topics.update("gw-0"), update("gw-0", 2**62, 1, w=(1e6, 1e6)))
        watcher.publish(topics.update("evil"), update("evil", 1, 1, n=1_000_000,
                                                      w=(1e6, 1e6), loss=1e-9))
        # and seq 2**62 as the very first update of gw-1 (no mark yet to jump from)
        watcher.publish(topics.update("gw-1"), update("gw-1", 2**62, 1))
        expected = "unknown_learner" if guard == "roster" else "too_many_samples"
        watcher.wait(lambda: sum(agg.refused.values()) == 3, what="three refusals")
        assert agg.refused == {"seq_jump": 2, expected: 1}
        # the real gateway goes on
        for seq in (2, 3):  # n = 1: what a real gateway can have seen in a tenth of a ms
            watcher.publish(topics.update("gw-0"), update("gw-0", seq, seq - 1, n=1))
            watcher.wait(lambda s=seq: agg.federation.version == s, what=f"v{seq}")
        assert np.allclose(agg.federation.model.params.weights, [2.0, -1.0])
        assert agg.federation.ledger.last_seq == {"gw-0": 3}
    watcher.wait(lambda: sorted(reasons(watcher)) == sorted(["seq_jump", "seq_jump", expected]),
                 what="dead letters")
    watcher.close()


def test_its_own_retained_model_newer_than_its_checkpoint_is_adopted(address, prefix,
                                                                       tmp_path):
    """Killed after the broker took v3 but before its checkpoint was written: the retained v3
    is its own (its digest was noted before it went out), so it goes on from v3."""
    topics = Topics(prefix)
    watcher = Recorder(address, topics.deadletter_filter)
    agg = aggregator(address, prefix, tmp_path)
    with ServiceThread(agg):
        for seq in (1, 2, 3):
            watcher.publish(topics.update("gw-0"), update("gw-0", seq, seq - 1))
            watcher.wait(lambda s=seq: agg.checkpointed == s, what=f"v{seq}")
    (tmp_path / "ckpt-000000000003.json").unlink()  # the checkpoint the kill cost
    agg = aggregator(address, prefix, tmp_path)
    with ServiceThread(agg):
        watcher.wait(lambda: agg.resumed, what="the retained model read")
        assert agg.federation.version == 3 and not agg.refused
        watcher.publish(topics.update("gw-0"), update("gw-0", 4, 3))
        watcher.wait(lambda: agg.federation.version == 4, what="v4")
    watcher.close()
    assert not agg.refused


def test_after_a_poisoning_stops_the_guard_lets_the_model_recover(address, prefix):
    """Issue #13: a new id with n = 1,000,000 and a claimed loss of 1e-9 took over the model;
    after it stopped, the rollback guard kept rolling every new version back. With no roster
    and no rate bound (the guard alone is under test), the model must recover."""
    topics = Topics(prefix)
    watcher = Recorder(address, topics.model)
    truth = np.array([2.0, -1.0])
    agg = aggregator(address, prefix, quorum_override=4, round_timeout=0.3, max_rate=0.0)
    with ServiceThread(agg):
        watcher.wait(lambda: agg.resumed, what="the start")
        for round_ in range(1, 11):
            base = agg.federation.version
            current = agg.federation.model
            weights = np.zeros(2) if current is None else current.params.weights
            loss = 0.5 + float(np.abs(weights - truth).mean())  # what honest learners see
            for who in ("gw-0", "gw-1", "gw-2"):
                watcher.publish(topics.update(who), update(who, round_, base, n=100,
                                                           loss=loss))
            if round_ <= 2:  # the attack, then it stops
                watcher.publish(topics.update("evil"), update(
                    "evil", round_, base, n=1_000_000, w=(1e6, 1e6), loss=1e-9))
                # (update() claims recent_n = n: a million samples behind the tiny loss)
            watcher.wait(lambda b=base: agg.federation.version > b, what=f"round {round_}")
    watcher.close()
    models = [decode_model(p) for p in watcher.on(topics.model)]
    # the attack took a version (the merge rule is not under test), the guard undid it, and
    # the last versions are the honest ones, merged, not rolled back
    assert any(np.abs(m.params.weights).max() > 1e5 for m in models)
    assert np.allclose(models[-1].params.weights, truth, atol=1e-6)
    assert not any("rollback" in m.notes for m in models[-4:])
