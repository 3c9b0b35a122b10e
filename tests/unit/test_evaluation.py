"""Prequential's running sums against river's metrics fed one sample at a time."""

import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from river import metrics

from learners.evaluation import Prequential
from learners.imbalance import GRID, ThresholdTuner

REL = 1e-9


def close(ours: float, theirs: float) -> bool:
    return math.isclose(ours, theirs, rel_tol=REL, abs_tol=1e-12)


def river_regression(ys, ps) -> dict:
    mae, rmse, r2 = metrics.MAE(), metrics.RMSE(), metrics.R2()
    for y, p in zip(ys, ps, strict=True):
        mae.update(y, p)
        rmse.update(y, p)
        r2.update(y, p)
    return {"n": len(ys), "mae": mae.get(), "rmse": rmse.get(), "r2": r2.get()}


def river_binary(ys, ps, thresholds=None) -> dict:
    """River's metrics, each prediction said True at its threshold (0.5 unless given)."""
    accuracy, balanced, log_loss = metrics.Accuracy(), metrics.BalancedAccuracy(), metrics.LogLoss()
    roc = metrics.ROCAUC(n_thresholds=101)
    thresholds = [0.5] * len(ys) if thresholds is None else thresholds
    for y, p, t in zip(ys, ps, thresholds, strict=True):
        accuracy.update(bool(y), p >= t)
        balanced.update(bool(y), p >= t)
        log_loss.update(bool(y), p)
        roc.update(bool(y), p)
    return {"n": len(ys), "accuracy": accuracy.get(), "balanced_accuracy": balanced.get(),
            "log_loss": log_loss.get(), "roc_auc": roc.get(),
            "threshold": thresholds[-1] if thresholds else 0.5}


def river_window(kind, ys, ps) -> dict:
    loss = metrics.LogLoss() if kind == "binary" else metrics.MAE()
    for y, p in zip(ys, ps, strict=True):
        loss.update(bool(y) if kind == "binary" else y, p)
    return {"recent_loss": loss.get(), "recent_n": len(ys)}


def assert_same(ours: dict, theirs: dict) -> None:
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        if key in ("n", "recent_n"):
            assert ours[key] == value
        elif key == "r2" and value != 0.0:
            # R² = 1 - SSE/TSS: the ratio is what both compute, so compare it relatively
            assert close(1.0 - ours[key], 1.0 - value), (key, ours[key], value)
        else:
            assert close(ours[key], value), (key, ours[key], value)


@st.composite
def blocked(draw, kind: str):
    """Targets and predictions, cut into blocks, each block marked "take a window after"."""
    n = draw(st.integers(0, 120))
    if kind == "binary":
        ys = draw(st.lists(st.sampled_from([0, 1, 0.0, 1.0, True, False]), min_size=n,
                           max_size=n))
        ps = draw(st.lists(st.one_of(st.floats(0.0, 1.0), st.sampled_from(
            [0.0, 1.0, 0.5, 1e-20, 1 - 1e-17, -0.25, 1.5])), min_size=n, max_size=n))
    else:
        value = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False)
        ys = draw(st.lists(value, min_size=n, max_size=n))
        ps = draw(st.lists(value, min_size=n, max_size=n))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=8)))
    bounds = [0, *cuts, n]
    blocks = [(a, b, draw(st.booleans())) for a, b in pairwise(bounds)]
    as_arrays = draw(st.booleans())
    return ys, ps, blocks, as_arrays


def check(kind: str, ys, ps, blocks, as_arrays: bool) -> None:
    ev = Prequential(kind)
    reference = river_binary if kind == "binary" else river_regression
    window_start = 0
    for a, b, take in blocks:
        y, p = ys[a:b], ps[a:b]
        ev.update_many(np.array(y, float) if as_arrays else y, np.array(p) if as_arrays else p)
        theirs = reference(ys[:b], ps[:b])
        if kind == "binary" and not b:
            theirs["roc_auc"] = 0.0  # river: -0.0
        assert_same(ev.as_dict(), theirs)
        if take:
            assert_same(ev.take_window(), river_window(kind, ys[window_start:b],
                                                       ps[window_start:b]))
            window_start = b
    assert_same(ev.take_window(), river_window(kind, ys[window_start:], ps[window_start:]))


def well_conditioned(ys) -> bool:
    """R² divides by the spread of the targets: where that spread is lost in rounding (targets
    equal but for their last digits), neither running variance is accurate, so no comparison."""
    if len(set(ys)) <= 1:
        return True  # exactly constant: both give 0.0, tested below too
    y = np.array(ys)
    return float(y.var()) >= 1e-6 * float(np.mean(y * y))


@settings(max_examples=300, deadline=None)
@given(blocked("regression"))
def test_regression_equals_river_fed_one_by_one(case):
    ys, ps, blocks, as_arrays = case
    assume(all(well_conditioned(ys[:b]) for _, b, _ in blocks))
    check("regression", ys, ps, blocks, as_arrays)


@settings(max_examples=300, deadline=None)
@given(blocked("binary"))
def test_binary_equals_river_fed_one_by_one(case):
    check("binary", *case)


@settings(max_examples=100, deadline=None)
@given(blocked("binary"))
def test_a_tuned_threshold_scores_each_block_with_the_blocks_before(case):
    # river fed each prediction said at the threshold tuned on the blocks before its own
    ys, ps, blocks, _ = case
    ev, tuner, thresholds = Prequential("binary", threshold=None), ThresholdTuner(), []
    for a, b, _ in blocks:
        thresholds += [tuner.threshold] * (b - a)
        ev.update_many(np.array(ys[a:b], float), np.array(ps[a:b]))
        tuner.update(np.array(ys[a:b], float), np.array(ps[a:b]))
    theirs = river_binary(ys, ps, thresholds)
    theirs["threshold"] = tuner.threshold
    if not ys:
        theirs["roc_auc"] = 0.0
    assert_same(ev.as_dict(), theirs)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.01, 0.5))
def test_the_tuner_picks_the_best_balanced_accuracy_of_its_grid(seed, share):
    rng = np.random.default_rng(seed)
    y = (rng.random(300) < share).astype(float)
    p = 1.0 / (1.0 + np.exp(-(rng.normal(-2.0, 1.0, 300) + 1.5 * y)))
    tuner = ThresholdTuner()
    tuner.update(y[:100], p[:100])
    tuner.update(y[100:], p[100:])  # two blocks add up
    assume(0 < y.sum() < len(y))

    def balanced(t):
        return (np.mean(p[y == 1] >= t) + np.mean(p[y == 0] < t)) / 2

    best = max(balanced(t) for t in GRID)
    assert math.isclose(balanced(tuner.threshold), best, abs_tol=1e-12)
    assert balanced(tuner.threshold) >= balanced(0.5)


@pytest.mark.parametrize("kind", ["regression", "binary"])
def test_nothing_seen_is_all_zeros(kind):
    ev = Prequential(kind)
    ev.update_many([], [])
    ev.update_many(np.empty(0), np.empty(0))
    reference = river_binary if kind == "binary" else river_regression
    assert ev.as_dict() == reference([], [])
    assert ev.take_window() == {"recent_loss": 0.0, "recent_n": 0}


def test_one_sample_has_no_r2_yet():
    ev = Prequential()
    ev.update_many([2.0], [1.5])
    assert ev.as_dict() == river_regression([2.0], [1.5]) == {
        "n": 1, "mae": 0.5, "rmse": 0.5, "r2": 0.0}


def test_a_constant_target_has_r2_zero_as_in_river():
    ys, ps = [0.1] * 7 + [0.1] * 5, [0.0, 0.2, 0.3, 0.1, 0.1, 0.5, 0.6] + [0.1] * 5
    ev = Prequential()
    ev.update_many(ys[:7], ps[:7])
    ev.update_many(np.array(ys[7:]), np.array(ps[7:]))
    ours, theirs = ev.as_dict(), river_regression(ys, ps)
    assert ours["r2"] == theirs["r2"] == 0.0
    assert_same(ours, theirs)


def test_figures_are_plain_floats_for_the_wire():
    ev, clf = Prequential(), Prequential("binary")
    ev.update_many(np.array([1.0, 2.0]), np.array([1.5, 2.5]))
    clf.update_many(np.array([1.0, 0.0]), np.array([0.7, 0.2]))
    for values in (ev.as_dict(), ev.take_window(), clf.as_dict(), clf.take_window()):
        assert all(type(v) in (int, float) for v in values.values()), values


def test_lengths_must_match():
    with pytest.raises(ValueError):
        Prequential().update_many([1.0, 2.0], [1.0])


def test_tuners_of_two_gateways_merge_into_the_tuner_of_both():
    rng = np.random.default_rng(5)
    y = (rng.random(400) < 0.1).astype(float)
    p = 1.0 / (1.0 + np.exp(-(rng.normal(-2.0, 1.0, 400) + 2.0 * y)))
    a, b, both = ThresholdTuner(), ThresholdTuner(), ThresholdTuner()
    a.update(y[:150], p[:150])
    b.update(y[150:], p[150:])
    both.update(y, p)
    a.merge(b)
    assert a.at_or_above.tolist() == both.at_or_above.tolist()
    assert a.threshold == both.threshold < 0.5  # 10 % positives: below 0.5
