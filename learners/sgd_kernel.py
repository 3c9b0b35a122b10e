"""The per-sample arithmetic of the online linear models, compiled with numba.

One call predicts then learns a whole block of rows in order (prequential), so the Python
overhead is paid once per block, not per reading. Two named structures go in: the settings
(:class:`SGDSettings`, fixed for a model) and the state (:class:`SGDState`, float64 arrays
updated in place). The readable reference of every step is ``tests/reference/learner.py``, and
``tests/unit/test_sgd_kernel.py`` holds this module equal to it; the math lives here only
because per-reading numpy calls cost ~30 µs and this ~1 µs.

Before each step, every feature's step memory (AdaGrad's sum, RMSProp's average of squared
gradients) is raised to at least the intercept's, which every sample feeds. A standardised
feature has, once it varies, about the intercept's squared gradients; one that has not varied
yet (the first rain, the first fog) has none, and AdaGrad's first step on it is a full ``lr``
whatever the gradient: a weight of 0.3 on a value 20 sds out, predictions 100 units off, and
how far off depended on which gateway saw the rain first (issue 15 point 8). Measured on the
weather stream (``fleetlearn evaluate``, docs/examples/weather.toml): central R² 0.9707 ->
0.9750, federated 0.9664 -> 0.9691, each gateway alone 0.9642 -> 0.9677.

>>> state = SGDState.zeros(1)
>>> settings = SGDSettings(REGRESSION, ADAGRAD, lr=0.3, beta=0.0, l2=0.0, clip=3.0)
>>> out = np.empty(2)
>>> predict_then_learn_rows(np.array([[1.0], [2.0]]), np.array([2.0, 4.0]), out, settings, state)
>>> out.tolist(), state.counts.tolist(), state.mean.tolist()  # the first: nothing seen yet
([0.0, 2.0], [2.0, 2.0], [1.5, 3.0])
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

REGRESSION = 0
BINARY = 1

SGD = 0
ADAGRAD = 1
RMSPROP = 2

_EPS = 1e-8
#: Balanced class weights count this many samples of each class before the first: early
#: weights stay near 1. Exact counts gave a rare first positive a weight of n / 2 (50 after a
#: hundred 0s), and that one gradient held AdaGrad's steps small for good (rain at the NYC
#: airports, 7 % positives: balanced accuracy 0.80 and ROC AUC 0.88, against 0.88 and 0.945
#: with this prior; 10 and 30 gave 0.87, 0.88).
BALANCE_PRIOR = 100.0


class SGDSettings(NamedTuple):
    """How a model learns: ``kind`` REGRESSION or BINARY, ``optimizer`` SGD, ADAGRAD or
    RMSPROP with its step ``lr`` (and ``beta`` for RMSProp), the L2 weight, the clip of the
    standardised error (regression), and (binary) the class weights: each sample's log-loss
    gradient times ``w0`` or ``w1`` by its class, or with ``balanced`` set, times
    n / (2 n_class) from the running class counts, :data:`BALANCE_PRIOR` each to start (the
    target's running mean is the share of 1s: :mod:`learners.imbalance`)."""

    kind: int
    optimizer: int
    lr: float
    beta: float
    l2: float
    clip: float
    balanced: int = 0
    w0: float = 1.0
    w1: float = 1.0


class SGDState(NamedTuple):
    """What a model knows, for d features (arrays of length d + 1, the target or intercept
    last)."""

    theta: np.ndarray  # standardised weights, then the intercept
    memory: np.ndarray  # the optimizer's per-coordinate memory (squared-gradient sums or averages)
    counts: np.ndarray  # [samples learned, samples since the last adopted model]
    mean: np.ndarray  # running mean of the features then the target, over everything learned
    m2: np.ndarray  # running sum of squared deviations, the same
    dmean: np.ndarray  # the same two since the last adopted model (what an update reports)
    dm2: np.ndarray

    @classmethod
    def zeros(cls, d: int) -> SGDState:
        """A blank state for d features.

        >>> SGDState.zeros(2).theta.tolist()
        [0.0, 0.0, 0.0]
        """
        return cls(*(np.zeros(2 if name == "counts" else d + 1) for name in cls._fields))


@njit(cache=True, inline="always")
def _sd(m2: float, count: float) -> float:
    if count < 2.0:
        return 1.0
    sd = math.sqrt(m2 / count)
    return sd if sd > 1e-12 else 1.0


@njit(cache=True, inline="always")
def _sigmoid(s: float) -> float:
    if s >= 0.0:
        return 1.0 / (1.0 + math.exp(-s))
    e = math.exp(s)
    return e / (1.0 + e)


@njit(cache=True)
def _score(x, theta, mean, m2, count):
    d = x.shape[0]
    s = theta[d]
    for j in range(d):
        s += theta[j] * (x[j] - mean[j]) / _sd(m2[j], count)
    return s


@njit(cache=True, inline="always")
def _predict(x, settings, state):
    d = x.shape[0]
    count = state.counts[0]
    s = _score(x, state.theta, state.mean, state.m2, count)
    if settings.kind == REGRESSION:
        return state.mean[d] + _sd(state.m2[d], count) * s
    return _sigmoid(s)


@njit(cache=True)
def predict_rows(X, out, settings, state):
    """Predictions in target units (regression) or probabilities (binary) into ``out``."""
    for i in range(X.shape[0]):
        out[i] = _predict(X[i], settings, state)


@njit(cache=True, inline="always")
def _welford(v, k, count, dcount, state):
    mean, m2, dmean, dm2 = state.mean, state.m2, state.dmean, state.dm2
    delta = v - mean[k]
    mean[k] += delta / count
    m2[k] += delta * (v - mean[k])
    ddelta = v - dmean[k]
    dmean[k] += ddelta / dcount
    dm2[k] += ddelta * (v - dmean[k])


@njit(cache=True, inline="always")
def _class_weight(y, share, count, settings):
    """The sample's class weight: given, or balanced, n / (2 n_class) with n_class from the
    running share of 1s, both counts starting at :data:`BALANCE_PRIOR` of each class."""
    if not settings.balanced:
        return settings.w1 if y != 0.0 else settings.w0
    n_class = share * count if y != 0.0 else (1.0 - share) * count
    return (count + 2.0 * BALANCE_PRIOR) / (2.0 * (n_class + BALANCE_PRIOR))


@njit(cache=True, inline="always")
def _learn(x, y, settings, state, grad):
    """Fold the sample into the statistics, then step on it in the updated scaling."""
    d = x.shape[0]
    theta, memory, counts, mean, m2 = (state.theta, state.memory, state.counts, state.mean,
                                       state.m2)
    counts[0] += 1.0
    counts[1] += 1.0
    count = counts[0]
    for j in range(d):
        _welford(x[j], j, count, counts[1], state)
    _welford(y, d, count, counts[1], state)
    s = _score(x, theta, mean, m2, count)
    if settings.kind == REGRESSION:
        err = s - (y - mean[d]) / _sd(m2[d], count)
        err = min(max(err, -settings.clip), settings.clip)
    else:
        err = (_sigmoid(s) - y) * _class_weight(y, mean[d], count, settings)
    for j in range(d):
        grad[j] = err * (x[j] - mean[j]) / _sd(m2[j], count) + settings.l2 * theta[j]
    grad[d] = err
    lr, beta = settings.lr, settings.beta
    floor = memory[d]  # no feature steps larger than the intercept's (module docstring)
    for j in range(d):
        if memory[j] < floor:
            memory[j] = floor
    for j in range(d + 1):
        g = grad[j]
        if settings.optimizer == SGD:
            theta[j] -= lr * g
        elif settings.optimizer == ADAGRAD:
            memory[j] += g * g
            theta[j] -= lr * g / (math.sqrt(memory[j]) + _EPS)
        else:
            memory[j] = beta * memory[j] + (1.0 - beta) * g * g
            theta[j] -= lr * g / (math.sqrt(memory[j]) + _EPS)


@njit(cache=True)
def predict_then_learn_rows(X, Y, out, settings, state):
    """Predict then learn each row of ``X`` (target ``Y``) in order; predictions go to ``out``."""
    grad = np.empty(X.shape[1] + 1)
    for i in range(X.shape[0]):
        out[i] = _predict(X[i], settings, state)
        _learn(X[i], Y[i], settings, state, grad)


@njit(cache=True)
def predict_then_learn_row(x, y, settings, state):
    """:func:`predict_then_learn_rows` for one row ``x``: returns the prediction.

    The per-reading path: it allocates no arrays, and ``settings`` and ``state`` may come as
    plain tuples in field order (``tuple(state)``), named again here: numba types a plain tuple
    argument in C, a NamedTuple in Python (~1 µs a call, a fifth of a reading's cost)."""
    settings, state = SGDSettings(*settings), SGDState(*state)
    prediction = _predict(x, settings, state)
    _learn(x, y, settings, state, np.empty(x.shape[0] + 1))
    return prediction


def warm() -> None:
    """Load (or compile) the kernels now, not on the first reading (~0.25 s from numba's cache).

    >>> warm()
    """
    x, y, out = np.zeros((1, 1)), np.zeros(1), np.empty(1)
    settings = SGDSettings(REGRESSION, ADAGRAD, 0.1, 0.9, 0.0, 3.0)
    predict_then_learn_rows(x, y, out, settings, SGDState.zeros(1))
    predict_then_learn_row(x[0], 0.0, tuple(settings), tuple(SGDState.zeros(1)))  # as models do
    predict_rows(x, out, settings, SGDState.zeros(1))
