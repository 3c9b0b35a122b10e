"""The learner math: kernel against numpy references, scalers and FedAvg."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.messages import LinearParams, Scaler
from learners.aggregate import AggregationError, fedavg
from learners.linear import LinearModel, output
from learners.optim import SGD, AdaGrad, RMSProp, make_optimizer
from learners.stats import moments_of, std

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
    model.learn_many(data[:, :2], data[:, 2])
    exact = moments_of(data)
    assert model.n_learned == len(rows)
    assert np.allclose(model.mean, exact.mean, atol=1e-6)
    assert np.allclose(model.m2, exact.m2, rtol=1e-6, atol=1e-4)


def test_delta_moments_start_again_at_each_adopted_model():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(300, 2)), rng.normal(size=300)
    model = LinearModel(("a", "b"))
    model.learn_many(X[:200], Y[:200])
    model.set_params(model.get_params(), model.scaler())
    model.learn_many(X[200:], Y[200:])
    delta = model.delta()
    expected = moments_of(np.c_[X[200:], Y[200:]])
    assert delta.count == 100 and np.allclose(delta.mean, expected.mean)
    assert np.allclose(delta.m2, expected.m2)
    assert model.scaler().count == 300


@pytest.mark.parametrize("optimizer", [SGD(0.01), AdaGrad(0.3), RMSProp(0.01, beta=0.9)])
def test_the_kernel_steps_like_the_numpy_optimizer(optimizer):
    # one sample, from zero weights and a known scaling: the kernel's step is the reference's
    model = LinearModel(("a", "b"), optimizer=optimizer, clip=100.0)
    # weights 0 and intercept = the target's mean: the standardised parameters are all 0
    model.set_params(LinearParams(("a", "b"), np.zeros(2), 3.0),
                     Scaler(10, np.array([1.0, 2.0, 3.0]), np.array([40.0, 10.0, 90.0])))
    assert not model.theta.any()
    x, y = np.array([3.0, 1.0]), 6.0
    model.learn_one(x, y)
    # reference: the statistics after folding the sample in, then the gradient, then the step
    mean = np.array([1.0, 2.0, 3.0]) + (np.r_[x, y] - [1.0, 2.0, 3.0]) / 11
    m2 = np.array([40.0, 10.0, 90.0]) + (np.r_[x, y] - [1.0, 2.0, 3.0]) * (np.r_[x, y] - mean)
    sd = np.sqrt(m2 / 11)
    z = (x - mean[:2]) / sd[:2]
    err = 0.0 - (y - mean[2]) / sd[2]
    theta, memory = np.zeros(3), np.zeros(3)
    optimizer.step(theta, np.r_[err * z, err], memory)
    assert np.allclose(model.theta, theta)


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
    model.learn_many(x, y)
    learned = model.get_params().weights
    assert np.linalg.norm(learned - w) / np.linalg.norm(w) < 0.03


def test_one_at_a_time_is_the_same_as_a_block():
    x, y, _ = synthetic(500)
    a, b = LinearModel(("a", "b", "c")), LinearModel(("a", "b", "c"))
    block = a.learn_many(x, y)
    single = [b.learn_one(xi, yi) for xi, yi in zip(x, y, strict=True)]
    assert np.allclose(block, single) and np.allclose(a.theta, b.theta)


def test_prediction_comes_before_learning():
    model = LinearModel(("a",))
    assert model.learn_one(np.array([1.0]), 5.0) == 0.0  # nothing seen: predicts 0
    assert model.n_learned == 1


def test_logistic_regression_separates_two_classes():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5000, 2)) * [3.0, 1.0] + [10.0, 0.0]
    y = (x[:, 0] - 10.0 + 2.0 * x[:, 1] > 0).astype(float)
    model = LinearModel(("a", "b"), kind="binary", optimizer=AdaGrad(0.5))
    predictions = model.learn_many(x, y)
    accuracy = np.mean((predictions[-1000:] >= 0.5) == y[-1000:])
    assert accuracy > 0.95
    p = model.get_params()  # raw units: the score crosses 0 on the true boundary
    assert output("binary", float(np.array([10.0, 0.5]) @ p.weights + p.intercept)) > 0.5
    assert output("binary", float(np.array([10.0, -0.5]) @ p.weights + p.intercept)) < 0.5


def test_params_survive_a_trip_through_another_learner():
    x, y, _ = synthetic(2000, seed=1)
    a, b = LinearModel(("a", "b", "c")), LinearModel(("a", "b", "c"))
    a.learn_many(x[:1000], y[:1000])
    b.learn_many(x[1000:1100] * 1.1, y[1000:1100])  # different scaler statistics
    b.set_params(a.get_params())
    probe = x[1500]
    assert b.predict_one(probe) == pytest.approx(a.predict_one(probe), rel=1e-9)
    b.set_params(a.get_params(), a.scaler())  # with a's scaling: the very same model
    assert np.allclose(b.theta, a.theta)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        LinearModel(("a",)).set_params(LinearParams(("b",), np.zeros(1), 0.0))
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


def test_fedavg_is_the_sample_weighted_mean():
    results = [(params([1, 2], 1), 10), (params([3, -2], 5), 30), (params([0, 0], 0), 60)]
    merged = fedavg(results)
    assert merged.weights.tolist() == pytest.approx([0.1 * 1 + 0.3 * 3, 0.1 * 2 - 0.3 * 2])
    assert merged.intercept == pytest.approx(0.1 * 1 + 0.3 * 5)


def test_fedavg_of_equal_learners_is_the_centralised_result():
    x, y, _ = synthetic(3000, seed=2)
    central = LinearModel(("a", "b", "c"))
    central.learn_many(x, y)
    same = central.get_params()
    merged = fedavg([(same, 1000), (same, 1000), (same, 1000)])
    assert np.allclose(merged.weights, same.weights) and merged.intercept == pytest.approx(
        same.intercept)


def test_fedavg_refuses_mixed_features_and_empty_input():
    with pytest.raises(AggregationError):
        fedavg([])
    with pytest.raises(AggregationError):
        fedavg([(params([1, 2]), 1), (LinearParams(("a", "c"), np.zeros(2), 0.0), 1)])
