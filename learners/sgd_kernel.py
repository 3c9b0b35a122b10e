"""The per-sample arithmetic of the online linear models, compiled with numba.

One call learns a whole block of rows in order, each predicted before it is learned
(prequential), so the Python overhead is paid once per block, not per reading. The math is
the same as :mod:`learners.optim` and :mod:`learners.stats` spell out in numpy (the tests hold
them equal); it lives here only because per-reading numpy calls cost ~30 µs and this ~1 µs.

State arrays (all float64, updated in place):

- ``theta``: standardised weights, then the intercept;
- ``opt``: the optimizer's per-coordinate memory (squared-gradient sums or averages);
- ``stats``: ``[count, delta_count]``; ``mean``/``m2``: running moments of the features then the
  target (length d + 1), over everything this learner knows; ``dmean``/``dm2``: the same since
  the last adopted model (what an update reports).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

REGRESSION = 0
BINARY = 1

SGD = 0
ADAGRAD = 1
RMSPROP = 2

_EPS = 1e-8


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


@njit(cache=True)
def predict_rows(X, out, kind, theta, stats, mean, m2):
    """Predictions in target units (regression) or probabilities (binary)."""
    d = X.shape[1]
    count = stats[0]
    y_sd = _sd(m2[d], count)
    for i in range(X.shape[0]):
        s = _score(X[i], theta, mean, m2, count)
        out[i] = mean[d] + y_sd * s if kind == REGRESSION else _sigmoid(s)


@njit(cache=True)
def _welford(v, k, count, dcount, mean, m2, dmean, dm2):
    delta = v - mean[k]
    mean[k] += delta / count
    m2[k] += delta * (v - mean[k])
    ddelta = v - dmean[k]
    dmean[k] += ddelta / dcount
    dm2[k] += ddelta * (v - dmean[k])


@njit(cache=True)
def learn_rows(X, Y, out, kind, optimizer, lr, beta, l2, clip,
               theta, opt, stats, mean, m2, dmean, dm2):
    """Predict then learn each row of ``X`` (target ``Y``) in order; predictions go to ``out``."""
    d = X.shape[1]
    grad = np.empty(d + 1)
    for i in range(X.shape[0]):
        x = X[i]
        y = Y[i]
        count = stats[0]
        s = _score(x, theta, mean, m2, count)
        if kind == REGRESSION:
            out[i] = mean[d] + _sd(m2[d], count) * s
        else:
            out[i] = _sigmoid(s)
        # fold the sample into the statistics, then step on it in the updated scaling
        stats[0] += 1.0
        stats[1] += 1.0
        count = stats[0]
        for j in range(d):
            _welford(x[j], j, count, stats[1], mean, m2, dmean, dm2)
        _welford(y, d, count, stats[1], mean, m2, dmean, dm2)
        s = _score(x, theta, mean, m2, count)
        if kind == REGRESSION:
            err = s - (y - mean[d]) / _sd(m2[d], count)
            err = min(max(err, -clip), clip)
        else:
            err = _sigmoid(s) - y
        for j in range(d):
            grad[j] = err * (x[j] - mean[j]) / _sd(m2[j], count) + l2 * theta[j]
        grad[d] = err
        for j in range(d + 1):
            g = grad[j]
            if optimizer == SGD:
                theta[j] -= lr * g
            elif optimizer == ADAGRAD:
                opt[j] += g * g
                theta[j] -= lr * g / (math.sqrt(opt[j]) + _EPS)
            else:
                opt[j] = beta * opt[j] + (1.0 - beta) * g * g
                theta[j] -= lr * g / (math.sqrt(opt[j]) + _EPS)


def warm() -> None:
    """Load (or compile) the kernels now, not on the first reading (~0.25 s from numba's cache).

    >>> warm()
    """
    x, y, out, z = np.zeros((1, 1)), np.zeros(1), np.empty(1), np.zeros(2)
    learn_rows(x, y, out, REGRESSION, ADAGRAD, 0.1, 0.9, 0.0, 3.0, z.copy(), z.copy(),
               z.copy(), z.copy(), z.copy(), z.copy(), z.copy())
    predict_rows(x, out, REGRESSION, z.copy(), z.copy(), z.copy(), z.copy())
