"""Hygiene that holds without keys (issue #13), in the aggregator's pure core: versions within
int64, an update's seq jump, the roster, the sample budget, and a rollback guard no single
learner's claimed loss can pin. No broker."""

import numpy as np
import pytest

from broker.messages import LinearParams, Model, Scaler, Update
from broker.model_codec import decode_model, decode_update, encode_model, encode_update
from broker.wire import DecodeError
from learners.federation import Federation, FederationConfig
from learners.guard import RollbackGuard
from learners.strategies import SyncRounds

pytestmark = pytest.mark.timeout(30)

FEATURES = ("a", "b")


def update(learner, seq, base, n=10, w=(1.0, 1.0), loss=None, recent_n=None):
    metrics = {} if loss is None else {"recent_loss": loss, "recent_n": recent_n or n}
    return Update(learner, seq, base, n, "y", LinearParams(FEATURES, np.array(w, float), 0.0),
                  0.0, Scaler(n, np.zeros(3), np.ones(3)), metrics=metrics)


def model(version):
    return Model(version, 0.0, 10, ("gw-0",), "y", LinearParams(FEATURES, np.ones(2), 0.0),
                 Scaler(10, np.zeros(3), np.ones(3)))


@pytest.mark.parametrize("field", ["version", "n"])
def test_a_model_number_beyond_int64_is_refused_at_decode(field):
    payload = encode_model(model(1)).replace(
        f'"{field}":{1 if field == "version" else 10}'.encode(), f'"{field}":{2**64 - 1}'.encode())
    with pytest.raises(DecodeError) as caught:
        decode_model(payload)
    assert caught.value.reason == "out_of_range" and "int64" in str(caught.value)


@pytest.mark.parametrize("field", ["seq", "base_version"])
def test_an_update_number_beyond_int64_is_refused_at_decode(field):
    payload = encode_update(update("gw-0", 3, 3)).replace(f'"{field}":3'.encode(),
                                                          f'"{field}":{2**63}'.encode())
    with pytest.raises(DecodeError) as caught:
        decode_update(payload)
    assert caught.value.reason == "out_of_range"
    # the largest int64 still decodes (and writes again)
    ok = decode_update(encode_update(update("gw-0", 2**63 - 1, 0)))
    assert ok.seq == 2**63 - 1


def test_a_seq_far_beyond_the_mark_is_refused_and_does_not_move_it():
    fed = Federation(FederationConfig(quorum=9, max_seq_jump=1000))
    assert fed.offer(update("gw-0", 10, 0), "gw-0", 0.0) is None
    refusal = fed.offer(update("gw-0", 2**62, 0, n=11), "gw-0", 0.0)
    assert refusal.reason == "seq_jump"
    assert fed.ledger.last_seq["gw-0"] == 10
    # the real gateway goes on; the checkpoint holds its real mark
    assert fed.offer(update("gw-0", 11, 0, n=12), "gw-0", 0.0) is None
    assert fed.to_state()["ledger"]["last_seq"] == {"gw-0": 11}


def test_a_learner_off_the_roster_is_refused():
    fed = Federation(FederationConfig(quorum=9, learners=("gw-0", "gw-1")))
    assert fed.offer(update("mallory", 1, 0), "mallory", 0.0).reason == "unknown_learner"
    assert fed.offer(update("gw-1", 1, 0), "gw-1", 0.0) is None
    assert fed.learners == {"gw-1"}
    # a second source of ids (the signing work's trusted keys) adds to it
    fed.roster.admit(["gw-2"])
    assert fed.offer(update("gw-2", 1, 0), "gw-2", 0.0) is None


def test_without_a_roster_any_learner_is_accepted():
    fed = Federation(FederationConfig(quorum=9))
    assert fed.roster.open and fed.offer(update("anyone", 1, 0), "anyone", 0.0) is None


def test_n_is_bounded_by_what_the_learner_can_have_seen_since_it_was_heard():
    fed = Federation(FederationConfig(quorum=9, max_rate=1000.0), started=100.0)
    # 2 s after the start: at most 2000 samples
    assert fed.offer(update("gw-0", 1, 0, n=1500), "gw-0", 102.0) is None
    # a forged n = 1,000,000 from an id that just appeared
    refusal = fed.offer(update("new", 1, 0, n=1_000_000), "new", 102.5)
    assert refusal.reason == "too_many_samples"
    # the same base 1 s later: 1500 then, at most 1000 more
    assert fed.offer(update("gw-0", 2, 0, n=2600), "gw-0", 103.0).reason == "too_many_samples"
    assert fed.offer(update("gw-0", 3, 0, n=2400), "gw-0", 103.0) is None
    # the refused update neither weighs in nor takes the learner's place in the round
    assert fed.learners == {"gw-0"}


def test_one_liar_cannot_set_the_guards_loss():
    guard = RollbackGuard(factor=3.0, min_samples=10)
    for who, loss in (("gw-0", 2.0), ("gw-1", 2.2), ("liar", 1e-6)):
        guard.observe(1, loss, 100, learner=who)
    assert guard.loss(1) == 2.0


def test_after_a_poisoning_stops_the_guard_does_not_pin_the_poisoned_model():
    """The attack of issue #13: a new id with the largest n and a low claimed loss takes over
    version 1; honest learners then find it bad. The guard must not keep every honest version
    rolling back to the poisoned one."""
    fed = Federation(FederationConfig(SyncRounds(round_timeout=0.1), quorum=3,
                                      rollback_min_samples=10))
    honest, poisoned = (1.0, 1.0), (1e6, 1e6)
    # v1: the attacker's huge n dominates the first merge
    fed.offer(update("gw-0", 1, 0, n=100, w=honest), "gw-0", 0.0)
    fed.offer(update("gw-1", 1, 0, n=100, w=honest), "gw-1", 0.0)
    fed.offer(update("evil", 1, 0, n=1_000_000, w=poisoned), "evil", 0.0)
    v1 = fed.step(0.0, 0.0)
    assert v1.params.weights[0] > 1e5  # the poisoning took (the merge rule is not the point)
    # under v1 the attacker claims a tiny loss, the honest learners a huge one; then it stops
    seq = 2
    for version in range(1, 8):
        for who in ("gw-0", "gw-1"):
            fed.offer(update(who, seq, version, n=100, w=honest, loss=1e12 if version == 1
                             else 1.0), who, 0.0)
        if version == 1:
            fed.offer(update("evil", seq, 1, n=100, w=poisoned, loss=1e-9,
                             recent_n=1_000_000), "evil", 0.0)
        seq += 1
        fed.step(1.0 * version, 0.0)
    # the model is the honest one again, not the poisoned one rolled back to every version
    assert np.allclose(fed.model.params.weights, honest, atol=1e-6)
    assert fed.guard.good_version != 1


def test_a_first_seq_beyond_any_clock_is_refused_and_a_checkpoint_forgets_such_a_mark():
    fed = Federation(FederationConfig(quorum=9, max_seq_jump=1000))
    wall = 1_800_000_000.0  # a gateway's seq: its clock in µs at start, plus one an update
    refusal = fed.offer(update("gw-0", 2**62, 0), "gw-0", 0.0, wall)
    assert refusal.reason == "seq_jump" and "gw-0" not in fed.ledger.last_seq
    assert fed.offer(update("gw-0", int(wall * 1e6), 0), "gw-0", 0.0, wall) is None
    assert fed.offer(update("gw-1", 1, 0), "gw-1", 0.0, wall) is None  # counters from 0: fine
    # a checkpoint written before the bound kept a forged mark: it is forgotten on restore
    fed.ledger.last_seq["gw-2"] = 2**62
    assert fed.ledger.forget_marks_beyond(fed.seq_ceiling(wall)) == ["gw-2"]
    assert set(fed.ledger.last_seq) == {"gw-0", "gw-1"}
