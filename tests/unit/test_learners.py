"""The learner math: scaling statistics, the regressor, FedAvg and synchronous rounds."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.codec import LinearParams, Update
from learners.aggregate import AggregationError, fedavg
from learners.linear import LinearRegressor
from learners.optim import SGD, AdaGrad
from learners.rounds import ACCEPTED, FUTURE, REPLAYED, STALE, SyncRounds
from learners.stats import RunningMoments

finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(st.lists(finite, min_size=0, max_size=40), st.lists(finite, min_size=0, max_size=40))
def test_moments_of_two_streams_merge_into_the_moments_of_both(left, right):
    # Prepare
    a, b, both = RunningMoments(1), RunningMoments(1), RunningMoments(1)
    for v in left:
        a.update(np.array([v]))
        both.update(np.array([v]))
    for v in right:
        b.update(np.array([v]))
        both.update(np.array([v]))
    # Execute
    merged = a + b
    # Assert
    assert merged.count == both.count
    assert np.allclose(merged.mean, both.mean, rtol=1e-9, atol=1e-6)
    assert np.allclose(merged.m2, both.m2, rtol=1e-6, atol=1e-3)


def synthetic(n, seed=0):
    rng = np.random.default_rng(seed)
    w, b = np.array([0.7, -1.2, 0.05]), 4.0
    x = rng.normal([20.0, 50.0, 1000.0], [5.0, 10.0, 8.0], size=(n, 3))
    y = x @ w + b + rng.normal(0.0, 0.3, n)
    return x, y, w


@pytest.mark.parametrize("optimizer", [SGD(lr=0.01), AdaGrad(lr=0.05)])
def test_sgd_converges_on_synthetic_data(optimizer):
    x, y, w = synthetic(20_000)
    model = LinearRegressor(("a", "b", "c"), optimizer=optimizer)
    for xi, yi in zip(x, y, strict=True):
        model.learn_one(xi, yi)
    learned = model.get_params().weights
    assert np.linalg.norm(learned - w) / np.linalg.norm(w) < 0.02


def test_prediction_comes_before_learning():
    model = LinearRegressor(("a",))
    assert model.learn_one(np.array([1.0]), 5.0) == 0.0  # nothing seen: predicts 0
    assert model.n_learned == 1


def test_params_survive_a_trip_through_another_learner():
    x, y, _ = synthetic(2000, seed=1)
    a, b = LinearRegressor(("a", "b", "c")), LinearRegressor(("a", "b", "c"))
    for xi, yi in zip(x[:1000], y[:1000], strict=True):
        a.learn_one(xi, yi)
    for xi, yi in zip(x[1000:1100] * 1.1, y[1000:1100], strict=True):
        b.learn_one(xi, yi)  # different scaler statistics
    b.set_params(a.get_params())
    probe = x[1500]
    assert b.predict_one(probe) == pytest.approx(a.predict_one(probe), rel=1e-9)


def test_set_params_refuses_other_features():
    with pytest.raises(ValueError):
        LinearRegressor(("a",)).set_params(LinearParams(("b",), np.zeros(1), 0.0))


def params(w, b=0.0):
    return LinearParams(("a", "b"), np.array(w, dtype=float), b)


def test_fedavg_is_the_sample_weighted_mean():
    results = [(params([1, 2], 1), 10), (params([3, -2], 5), 30), (params([0, 0], 0), 60)]
    merged = fedavg(results)
    assert merged.weights.tolist() == pytest.approx([0.1 * 1 + 0.3 * 3, 0.1 * 2 - 0.3 * 2])
    assert merged.intercept == pytest.approx(0.1 * 1 + 0.3 * 5)


def test_fedavg_of_equal_learners_is_the_centralised_result():
    x, y, _ = synthetic(3000, seed=2)
    central = LinearRegressor(("a", "b", "c"))
    for xi, yi in zip(x, y, strict=True):
        central.learn_one(xi, yi)
    same = central.get_params()
    merged = fedavg([(same, 1000), (same, 1000), (same, 1000)])
    assert np.allclose(merged.weights, same.weights) and merged.intercept == pytest.approx(
        same.intercept)


def test_fedavg_refuses_mixed_features_and_empty_input():
    with pytest.raises(AggregationError):
        fedavg([])
    with pytest.raises(AggregationError):
        fedavg([(params([1, 2]), 1), (LinearParams(("a", "c"), np.zeros(2), 0.0), 1)])


def update(learner, seq, base, n=10):
    return Update(learner, seq, base, n, "y", params([1, 1]), 0.0)


def test_round_waits_for_quorum_or_timeout():
    rounds = SyncRounds(quorum=3, round_timeout=2.0)
    assert rounds.offer(update("a", 1, 0), now=10.0) == ACCEPTED
    assert rounds.offer(update("b", 1, 0), now=10.5) == ACCEPTED
    assert not rounds.ready(now=11.0)
    assert rounds.ready(now=12.0)


def test_a_learner_sending_twice_replaces_its_update():
    rounds = SyncRounds(quorum=2)
    rounds.offer(update("a", 1, 0, n=10), 0.0)
    rounds.offer(update("a", 2, 0, n=25), 0.0)
    assert not rounds.ready(0.1)
    rounds.offer(update("b", 1, 0, n=5), 0.0)
    _, contributors, n = rounds.close()
    assert contributors == ("a", "b") and n == 30 and rounds.version == 1


def test_stale_future_and_replayed_updates_are_refused():
    rounds = SyncRounds(quorum=1)
    rounds.offer(update("a", 5, 0), 0.0)
    rounds.close()
    assert rounds.offer(update("b", 1, 0), 0.0) == STALE
    assert rounds.offer(update("b", 2, 9), 0.0) == FUTURE
    assert rounds.offer(update("a", 5, 1), 0.0) == REPLAYED
    assert rounds.offer(update("a", 6, 1), 0.0) == ACCEPTED
