"""The learner as a model: scalers, parameters in raw units, convergence, and FedAvg's rule
against the references (the kernel's step by step: tests/unit/test_sgd_kernel.py)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.messages import LinearParams, Scaler
from learners.aggregate import AggregationError, as_params, as_vector, combine
from learners.linear import LinearModel
from learners.link import output
from learners.optim import SGD, AdaGrad, RMSProp, make_optimizer
from learners.stats import std
from tests.reference.learner import fedavg, moments_of

finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(st.lists(finite, min_size=0, max_size=40), st.lists(finite, min_size=0, max_size=40))
def test_moments_of_two_streams_merge_into_the_moments_of_both(left, right):
    # Prepare
    a, b = (moments_of(np.array(v, dtype=float).reshape(-1, 1)) for v in (left, right))
    both = moments_of(np.array(left + right, dtype=float).reshape(-1, 1))
    # Execute
    merged = a + b
    # Assert
    assert merged.count == both.count
    assert np.allclose(merged.mean, both.mean, rtol=1e-9, atol=1e-6)
    assert np.allclose(merged.m2, both.m2, rtol=1e-6, atol=1e-3)


@settings(deadline=None)
@given(st.lists(st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3), min_size=2,
                max_size=50))
def test_the_kernels_running_moments_are_the_batch_moments(rows):
    data = np.array(rows)
    model = LinearModel(("a", "b"))
    model.predict_then_learn(data[:, :2], data[:, 2])
    exact = moments_of(data)
    assert model.n_learned == len(rows)
    assert np.allclose(model.state.mean, exact.mean, atol=1e-6)
    assert np.allclose(model.state.m2, exact.m2, rtol=1e-6, atol=1e-4)


def test_delta_moments_start_again_at_each_adopted_model():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(300, 2)), rng.normal(size=300)
    model = LinearModel(("a", "b"))
    model.predict_then_learn(X[:200], Y[:200])
    model.load_params(model.to_params(), model.scaler())
    model.predict_then_learn(X[200:], Y[200:])
    delta = model.delta()
    expected = moments_of(np.c_[X[200:], Y[200:]])
    assert delta.count == 100 and np.allclose(delta.mean, expected.mean)
    assert np.allclose(delta.m2, expected.m2)
    assert model.scaler().count == 300


def synthetic(n, seed=0):
    rng = np.random.default_rng(seed)
    w, b = np.array([0.7, -1.2, 0.05]), 4.0
    x = rng.normal([20.0, 50.0, 1000.0], [5.0, 10.0, 8.0], size=(n, 3))
    y = x @ w + b + rng.normal(0.0, 0.3, n)
    return x, y, w


@pytest.mark.parametrize("optimizer", [SGD(0.01), AdaGrad(), RMSProp(0.003)])
def test_it_converges_on_synthetic_data(optimizer):
    x, y, w = synthetic(20_000)
    model = LinearModel(("a", "b", "c"), optimizer=optimizer)
    model.predict_then_learn(x, y)
    learned = model.to_params().weights
    assert np.linalg.norm(learned - w) / np.linalg.norm(w) < 0.03


def test_one_at_a_time_is_the_same_as_a_block():
    x, y, _ = synthetic(500)
    a, b = LinearModel(("a", "b", "c")), LinearModel(("a", "b", "c"))
    block = a.predict_then_learn(x, y)
    single = [b.predict_then_learn_one(xi, yi) for xi, yi in zip(x, y, strict=True)]
    assert np.allclose(block, single) and np.allclose(a.state.theta, b.state.theta)


def test_prediction_comes_before_learning():
    model = LinearModel(("a",))
    assert model.predict_then_learn_one(np.array([1.0]), 5.0) == 0.0  # nothing seen: predicts 0
    assert model.n_learned == 1


def test_learn_one_and_predict_one_mean_what_they_mean_in_river():
    x, y, _ = synthetic(50)
    a, b = LinearModel(("a", "b", "c")), LinearModel(("a", "b", "c"))
    for xi, yi in zip(x, y, strict=True):
        assert a.learn_one(xi, yi) is None
    predictions = b.predict_then_learn(x, y)
    assert a.n_learned == 50 and np.array_equal(a.state.theta, b.state.theta)
    assert a.predict_one(x[0]) == b.predict_one(x[0]) != predictions[0]


def test_logistic_regression_separates_two_classes():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5000, 2)) * [3.0, 1.0] + [10.0, 0.0]
    y = (x[:, 0] - 10.0 + 2.0 * x[:, 1] > 0).astype(float)
    model = LinearModel(("a", "b"), kind="binary", optimizer=AdaGrad(0.5))
    predictions = model.predict_then_learn(x, y)
    accuracy = np.mean((predictions[-1000:] >= 0.5) == y[-1000:])
    assert accuracy > 0.95
    p = model.to_params()  # raw units: the score crosses 0 on the true boundary
    assert output("binary", float(np.array([10.0, 0.5]) @ p.weights + p.intercept)) > 0.5
    assert output("binary", float(np.array([10.0, -0.5]) @ p.weights + p.intercept)) < 0.5


def test_params_survive_a_trip_through_another_learner():
    x, y, _ = synthetic(2000, seed=1)
    a, b = LinearModel(("a", "b", "c")), LinearModel(("a", "b", "c"))
    a.predict_then_learn(x[:1000], y[:1000])
    b.predict_then_learn(x[1000:1100] * 1.1, y[1000:1100])  # different scaler statistics
    b.load_params(a.to_params())
    probe = x[1500]
    assert b.predict_one(probe) == pytest.approx(a.predict_one(probe), rel=1e-9)
    b.load_params(a.to_params(), a.scaler())  # with a's scaling: the very same model
    assert np.allclose(b.state.theta, a.state.theta)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        LinearModel(("a",)).load_params(LinearParams(("b",), np.zeros(1), 0.0))
    with pytest.raises(ValueError):
        LinearModel(("a",), kind="ternary")
    with pytest.raises(ValueError):
        make_optimizer("adam")
    with pytest.raises(ValueError):
        RMSProp(beta=1.0)


def test_std_is_one_where_undefined():
    assert std(Scaler.empty(2)).tolist() == [1.0, 1.0]


def params(w, b=0.0):
    return LinearParams(("a", "b"), np.array(w, dtype=float), b)


def mean_rule(results):
    """FedAvg as the strategies run it: the ``mean`` rule over parameter vectors."""
    vectors = np.stack([as_vector(p) for p, _ in results])
    merged = combine(vectors, np.array([n for _, n in results], dtype=float), "mean")
    return as_params(results[0][0].features, merged)


@given(st.lists(st.tuples(st.lists(finite, min_size=2, max_size=2), finite,
                          st.integers(1, 10_000)), min_size=1, max_size=8))
def test_the_mean_rule_is_fedavg(learners):
    results = [(params(w, b), n) for w, b, n in learners]
    merged, expected = mean_rule(results), fedavg(results)
    assert np.allclose(merged.weights, expected.weights, rtol=1e-9, atol=1e-6)
    assert merged.intercept == pytest.approx(expected.intercept, rel=1e-9, abs=1e-6)


def test_fedavg_is_the_sample_weighted_mean():
    results = [(params([1, 2], 1), 10), (params([3, -2], 5), 30), (params([0, 0], 0), 60)]
    merged = mean_rule(results)
    assert merged.weights.tolist() == pytest.approx([0.1 * 1 + 0.3 * 3, 0.1 * 2 - 0.3 * 2])
    assert merged.intercept == pytest.approx(0.1 * 1 + 0.3 * 5)


def test_fedavg_of_equal_learners_is_the_centralised_result():
    x, y, _ = synthetic(3000, seed=2)
    central = LinearModel(("a", "b", "c"))
    central.predict_then_learn(x, y)
    same = central.to_params()
    merged = mean_rule([(same, 1000), (same, 1000), (same, 1000)])
    assert np.allclose(merged.weights, same.weights) and merged.intercept == pytest.approx(
        same.intercept)


def test_the_mean_rule_refuses_nothing_and_weightless_input():
    with pytest.raises(AggregationError):
        combine(np.empty((0, 3)), np.empty(0), "mean")
    with pytest.raises(AggregationError):
        combine(np.ones((2, 3)), np.zeros(2), "mean")
