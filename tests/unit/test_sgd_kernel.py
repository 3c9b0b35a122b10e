"""The compiled learner computes exactly what the readable reference learner does.

``tests/reference/learner.py`` spells out, one sample at a time in numpy, what
:mod:`learners.sgd_kernel` computes: predict, fold the sample into the running moments, step
the optimizer on the clipped standardised error (or the log loss) plus L2. Random models (kinds,
optimizers, steps, L2, clipping) from random states learn random blocks (features of very
different units, constant columns, binary targets); every prediction and every state array
must agree, for the block kernel, the one-row kernel and prediction alone; binary models with
no class weights, given ones and balanced ones.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from learners.sgd_kernel import (
    ADAGRAD,
    BINARY,
    REGRESSION,
    RMSPROP,
    SGD,
    SGDSettings,
    SGDState,
    predict_rows,
    predict_then_learn_row,
    predict_then_learn_rows,
)
from tests.reference.learner import ReferenceLearner

CODES = {"sgd": SGD, "adagrad": ADAGRAD, "rmsprop": RMSPROP}
TOLERANCE = {"rtol": 1e-9, "atol": 1e-9}


@st.composite
def cases(draw):
    """(reference learner, compiled settings and state, X, Y): the same model twice."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    d = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["regression", "binary"]))
    optimizer = draw(st.sampled_from(list(CODES)))
    lr = draw(st.sampled_from([0.001, 0.05, 0.3, 1.0]))
    beta = draw(st.sampled_from([0.5, 0.9, 0.99])) if optimizer == "rmsprop" else 0.0
    l2 = draw(st.sampled_from([0.0, 0.01, 0.5]))
    clip = draw(st.sampled_from([0.1, 1.0, 3.0, 100.0]))
    class_weight = draw(st.sampled_from(["none", "balanced", (0.3, 4.0)]))
    count = draw(st.sampled_from([0, 1, 2, 30]))  # a fresh model, too young to scale, or not
    dcount = draw(st.integers(0, count))
    n = draw(st.integers(1, 40))
    scale = 10.0 ** rng.uniform(-2, 3, d)  # features in very different units
    X = rng.normal(rng.normal(0, 50, d), scale, (n, d))
    if draw(st.booleans()):
        X[:, 0] = X[0, 0]  # a constant feature: its sd is 0, scaled by 1 instead
    if kind == "binary":
        Y = (rng.random(n) < 0.5).astype(float)
    else:
        Y = X @ rng.normal(0, 2, d) + rng.normal(0, 10 ** rng.uniform(-1, 2), n)
    ref = ReferenceLearner(
        kind, optimizer, lr, beta, l2, clip, theta=rng.normal(0, 1, d + 1),
        memory=rng.uniform(0, 5, d + 1) if optimizer != "sgd" else np.zeros(d + 1),
        count=count, dcount=dcount, mean=rng.normal(0, 20, d + 1) if count else np.zeros(d + 1),
        m2=rng.uniform(0, 1e3, d + 1) * (count > 1), dmean=rng.normal(0, 20, d + 1) * (dcount > 0),
        dm2=rng.uniform(0, 1e3, d + 1) * (dcount > 1), class_weight=class_weight)
    if kind == "binary" and count:
        ref.mean[-1] = rng.uniform(0, 1)  # a share of 1s, as the balanced weights read it
    w0, w1 = class_weight if isinstance(class_weight, tuple) else (1.0, 1.0)
    compiled = SGDSettings(REGRESSION if kind == "regression" else BINARY, CODES[optimizer], lr,
                           beta, l2, clip, int(class_weight == "balanced"), w0, w1)
    return ref, compiled, state_of(ref), X, Y


def state_of(ref: ReferenceLearner) -> SGDState:
    return SGDState(ref.theta.copy(), ref.memory.copy(), np.array([ref.count, ref.dcount], float),
                    ref.mean.copy(), ref.m2.copy(), ref.dmean.copy(), ref.dm2.copy())


def assert_same_state(state: SGDState, ref: ReferenceLearner) -> None:
    expected = state_of(ref)
    for name in SGDState._fields:
        np.testing.assert_allclose(getattr(state, name), getattr(expected, name), **TOLERANCE,
                                   err_msg=name)


@settings(max_examples=300, deadline=None)
@given(cases())
def test_the_block_kernel_predicts_and_learns_as_the_reference(case):
    ref, compiled, state, X, Y = case
    out = np.empty(len(Y))
    predict_then_learn_rows(X, Y, out, compiled, state)
    np.testing.assert_allclose(out, ref.predict_then_learn(X, Y), **TOLERANCE)
    assert_same_state(state, ref)


@settings(max_examples=100, deadline=None)
@given(cases(), st.booleans())
def test_one_row_at_a_time_is_the_block_kernel(case, plain):
    _, compiled, state, X, Y = case
    block = SGDState(*(a.copy() for a in state))
    out = np.empty(len(Y))
    predict_then_learn_rows(X, Y, out, compiled, block)
    args = (tuple(compiled), tuple(state)) if plain else (compiled, state)  # models pass tuples
    single = [predict_then_learn_row(x, y, *args) for x, y in zip(X, Y, strict=True)]
    assert single == out.tolist()  # the same arithmetic: bit for bit
    for a, b in zip(state, block, strict=True):
        assert a.tolist() == b.tolist()


@settings(max_examples=100, deadline=None)
@given(cases())
def test_prediction_alone_is_the_references_and_changes_nothing(case):
    ref, compiled, state, X, _ = case
    before = [a.copy() for a in state]
    out = np.empty(len(X))
    predict_rows(X, out, compiled, state)
    np.testing.assert_allclose(out, [ref.predict(x) for x in X], **TOLERANCE)
    assert all(np.array_equal(a, b) for a, b in zip(state, before, strict=True))


def test_balanced_weights_move_a_rare_positive_further():
    # the weighted branch must change the step: a rare 1 after 300 0s moves the intercept more
    X, Y = np.zeros((301, 1)), np.array([0.0] * 300 + [1.0])
    moved = {}
    for balanced in (0, 1):
        state = SGDState.zeros(1)
        predict_then_learn_rows(X, Y, np.empty(301),
                                SGDSettings(BINARY, SGD, 0.1, 0.0, 0.0, 3.0, balanced), state)
        moved[balanced] = state.theta[-1]
    assert moved[1] > moved[0] + 0.1


def test_the_reference_is_not_trivially_equal():
    # the property above could pass vacuously if neither side learned: this one must move
    ref = ReferenceLearner.blank(2, optimizer="sgd", lr=0.1)
    X, Y = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.0]]), np.array([1.0, 4.0, -2.0])
    state = state_of(ref)
    out = np.empty(3)
    predict_then_learn_rows(X, Y, out, SGDSettings(REGRESSION, SGD, 0.1, 0.0, 0.0, 3.0), state)
    ref.predict_then_learn(X, Y)
    assert np.abs(state.theta).max() > 0.01
    assert_same_state(state, ref)
