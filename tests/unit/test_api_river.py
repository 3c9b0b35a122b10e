"""fleetlearn's river-compatible learners run in river's own progressive validation, on
river's bundled data sets, and beat river's trivial baselines by far."""

import pytest
from river import datasets, dummy, evaluate, metrics, stats

import fleetlearn

pytestmark = pytest.mark.timeout(120)


def test_the_regressor_beats_the_running_mean_in_progressive_validation():
    ours = evaluate.progressive_val_score(datasets.TrumpApproval(), fleetlearn.Regressor(),
                                          metrics.MAE())
    mean = evaluate.progressive_val_score(datasets.TrumpApproval(),
                                          dummy.StatisticRegressor(stats.Mean()), metrics.MAE())
    assert ours.get() < 0.5 * mean.get()  # measured: 0.34 against 1.57


def test_the_classifier_beats_the_majority_class_in_progressive_validation():
    ours = evaluate.progressive_val_score(datasets.Phishing(), fleetlearn.Classifier(),
                                          metrics.Accuracy())
    prior = evaluate.progressive_val_score(datasets.Phishing(), dummy.PriorClassifier(),
                                           metrics.Accuracy())
    assert ours.get() > prior.get() + 0.2  # measured: 0.89 against 0.55


def test_river_s_contract_learn_returns_nothing_and_a_fresh_model_predicts_zero():
    model = fleetlearn.Regressor(features=("a", "b"))
    assert model.predict_one({"a": 1.0}) == 0.0
    assert model.learn_one({"a": 1.0, "b": 2.0, "ignored": 9.0}, 3.0) is None
    assert model.features == ("a", "b")
    assert fleetlearn.Classifier().predict_one({"a": 1.0}) is None
