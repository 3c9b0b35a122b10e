"""A learner's side of synchronisation: updates report everything since the base; adopting a
model keeps the progress the model cannot contain."""

import numpy as np
import pytest

from broker.messages import LinearParams, Model
from learners.linear import LinearModel
from learners.local import LocalLearner
from tests.reference.learner import moments_of


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal([5.0, -2.0], [2.0, 1.0], size=(n, 2))
    return X, X @ [1.5, -0.5] + 3.0 + rng.normal(0, 0.1, n)


def model_from(update, version=1):
    return Model(version, 0.0, update.n, ("g",), "y", update.params, update.scaler)


def test_an_update_reports_all_since_the_base_and_its_moments():
    X, Y = data(300)
    local = LocalLearner(LinearModel(("a", "b")))
    local.learn(X[:100], Y[:100])
    local.update("g", 1, "y", 0.0)
    local.learn(X[100:], Y[100:])
    second = local.update("g", 2, "y", 0.0)
    assert second.n == 300 and second.base_version == 0
    exact = moments_of(np.c_[X, Y])
    assert second.scaler.count == 300 and np.allclose(second.scaler.m2, exact.m2)


def test_adopting_the_model_of_our_own_update_changes_nothing_but_the_base():
    X, Y = data(200)
    local = LocalLearner(LinearModel(("a", "b")))
    local.learn(X, Y)
    before = local.learner.predict_many(X[:5])
    local.adopt(model_from(local.update("g", 1, "y", 0.0)))
    assert np.allclose(local.learner.predict_many(X[:5]), before)
    assert local.base_version == 1 and local.since_base == 0


def test_progress_after_the_send_is_kept_on_top_of_the_model():
    X, Y = data(400)
    local = LocalLearner(LinearModel(("a", "b")))
    local.learn(X[:200], Y[:200])
    sent = local.update("g", 1, "y", 0.0)
    local.learn(X[200:], Y[200:])
    progress = local.learner.to_params().weights - sent.params.weights
    shifted = LinearParams(("a", "b"), sent.params.weights + 1.0, sent.params.intercept)
    local.adopt(Model(1, 0.0, 200, ("g", "h"), "y", shifted, sent.scaler))
    assert np.allclose(local.learner.to_params().weights, shifted.weights + progress)
    assert local.since_base == 200  # what the model does not hold yet
    unsent = moments_of(np.c_[X[200:], Y[200:]])
    expected = sent.scaler + unsent
    assert local.learner.scaler().count == 400
    assert np.allclose(local.learner.state.mean, expected.mean)
    assert np.allclose(local.learner.delta().m2, unsent.m2)


def test_older_models_are_ignored():
    X, Y = data(50)
    local = LocalLearner(LinearModel(("a", "b")))
    local.learn(X, Y)
    assert local.adopt(model_from(local.update("g", 1, "y", 0.0), version=3))
    assert not local.adopt(model_from(local.update("g", 2, "y", 0.0), version=2))
    assert local.base_version == 3


def test_a_learner_that_never_synced_takes_the_model_as_it_is():
    X, Y = data(100)
    other = LocalLearner(LinearModel(("a", "b")))
    other.learn(X, Y)
    model = model_from(other.update("h", 1, "y", 0.0))
    local = LocalLearner(LinearModel(("a", "b")))
    local.learn(X[:30] * 2.0, Y[:30])
    local.adopt(model)
    assert local.learner.to_params().weights == pytest.approx(model.params.weights)
