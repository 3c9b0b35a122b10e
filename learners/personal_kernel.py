"""The personal parts' mixing step, compiled (:func:`learners.personal.mix` is its readable
definition and calls it; ``tests/reference/personal.py`` is its one-row-at-a-time reference,
held equal by ``tests/unit/test_personal_kernel.py``).

Per row: the weights ``(a1, a2)`` of the key's own model and its slow twin from the forgotten
sums of the rows before (:func:`simplex_weights`); the mixed prediction
``g + a1 (own - g) + a2 (slow - g)``; then the sums move on. The state, per key (:data:`STATE`
floats): ``S11, S12, S22`` (forgotten sums of ``d_i d_j``, ``d1 = own - g``, ``d2 = slow - g``),
``b1, b2`` (of ``d_i (y - g)``), ``seen`` (a row where either differed from ``g``) and
``agreed`` (a row where the own model, not blank, predicted exactly ``g``: until the first
global model a gateway's model is its site's own learning).

>>> import numpy as np
>>> state = np.zeros(STATE)
>>> out = np.empty(3)
>>> mix_rows(np.zeros(3), np.ones(3), np.ones(3), np.ones(3), state, out, 0.99, 0)
>>> out.tolist()   # no evidence, never agreed: the global model; then the own one
[0.0, 1.0, 1.0]
>>> simplex_weights(state)
(1.0, 0.0)
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: Floats of a key's mixing state: S11, S12, S22, b1, b2, seen, agreed.
STATE = 7


@njit(cache=True)
def _value(a1, a2, s11, s12, s22, b1, b2):  # pragma: no cover - compiled
    """The forgotten squared error of the mix ``(a1, a2)`` less that of the global model."""
    return a1 * a1 * s11 + 2.0 * a1 * a2 * s12 + a2 * a2 * s22 - 2.0 * (a1 * b1 + a2 * b2)


@njit(cache=True)
def _clamp(v):  # pragma: no cover - compiled
    return min(max(v, 0.0), 1.0)


@njit(cache=True)
def simplex_weights(state):  # pragma: no cover - compiled
    """The weights ``(a1, a2)``, ``a1, a2 >= 0, a1 + a2 <= 1``, of least forgotten squared
    error; the first of the least in this order: the global model alone (0, 0), the interior
    solution, the edges ``a2 = 0``, ``a1 = 0``, ``a1 + a2 = 1``."""
    s11, s12, s22, b1, b2 = state[0], state[1], state[2], state[3], state[4]
    best1, best2, best = 0.0, 0.0, 0.0
    det = s11 * s22 - s12 * s12
    if det > 1e-12 * s11 * s22 and det > 0.0:
        a1 = (b1 * s22 - b2 * s12) / det
        a2 = (b2 * s11 - b1 * s12) / det
        if a1 >= 0.0 and a2 >= 0.0 and a1 + a2 <= 1.0:
            v = _value(a1, a2, s11, s12, s22, b1, b2)
            if v < best:
                best1, best2, best = a1, a2, v
    if s11 > 0.0:
        a1 = _clamp(b1 / s11)
        v = _value(a1, 0.0, s11, s12, s22, b1, b2)
        if v < best:
            best1, best2, best = a1, 0.0, v
    if s22 > 0.0:
        a2 = _clamp(b2 / s22)
        v = _value(0.0, a2, s11, s12, s22, b1, b2)
        if v < best:
            best1, best2, best = 0.0, a2, v
    q = s11 - 2.0 * s12 + s22
    if q > 0.0:
        t = _clamp((s22 - s12 - b2 + b1) / q)
        v = _value(t, 1.0 - t, s11, s12, s22, b1, b2)
        if v < best:
            best1, best2, best = t, 1.0 - t, v
    if state[5] == 0.0:  # no evidence yet
        return (1.0, 0.0) if state[6] != 0.0 else (0.0, 0.0)
    if state[6] != 0.0 and s11 == 0.0:  # the own model has only ever agreed with g
        best1 = 1.0 - best2
    return best1, best2


@njit(cache=True)
def mix_rows(g, own, slow, y, state, out, decay, skip):  # pragma: no cover - compiled
    for i in range(len(y)):
        if i < skip:  # a blank own model cannot guess: the global prediction stands
            out[i] = g[i]
            continue
        a1, a2 = simplex_weights(state)
        d1 = own[i] - g[i]
        d2 = slow[i] - g[i]
        out[i] = g[i] + a1 * d1 + a2 * d2
        if d1 == 0.0:
            state[6] = 1.0
        if d1 == 0.0 and d2 == 0.0:
            continue
        e = y[i] - g[i]
        state[0] = decay * state[0] + d1 * d1
        state[1] = decay * state[1] + d1 * d2
        state[2] = decay * state[2] + d2 * d2
        state[3] = decay * state[3] + d1 * e
        state[4] = decay * state[4] + d2 * e
        state[5] = 1.0


#: Probabilities are clipped this far from 0 and 1 before their log-odds are taken (±27.6).
EPS = 1e-12


@njit(cache=True, inline="always")
def _logit(p):  # pragma: no cover - compiled
    q = min(max(p, EPS), 1.0 - EPS)
    return math.log(q / (1.0 - q))


@njit(cache=True)
def mix_rows_logistic(g, own, slow, y, cw, state, out, decay, skip):  # pragma: no cover
    """Binary tasks: ``g``, ``own``, ``slow`` are probabilities, mixed in log-odds (the mix of
    logistic models is one: it is what a predictor serves from the published part); the
    weights least-squares on the forgotten sums of an online IRLS step for the class-weighted
    (``cw``, per row) log-loss: ``w = p (1 - p) cw`` per row at the mix's own ``p``, the working
    residual ``cw (y - p) + w (a1 d1 + a2 d2)``."""
    for i in range(len(y)):
        if i < skip:
            out[i] = g[i]
            continue
        a1, a2 = simplex_weights(state)
        zg = _logit(g[i])
        d1 = _logit(own[i]) - zg
        d2 = _logit(slow[i]) - zg
        z = zg + a1 * d1 + a2 * d2
        p = 1.0 / (1.0 + math.exp(-z))
        out[i] = p
        if d1 == 0.0:
            state[6] = 1.0
        if d1 == 0.0 and d2 == 0.0:
            continue
        w = max(p * (1.0 - p), 1e-6) * cw[i]
        e = cw[i] * (y[i] - p) + w * (a1 * d1 + a2 * d2)
        state[0] = decay * state[0] + w * d1 * d1
        state[1] = decay * state[1] + w * d1 * d2
        state[2] = decay * state[2] + w * d2 * d2
        state[3] = decay * state[3] + d1 * e
        state[4] = decay * state[4] + d2 * e
        state[5] = 1.0


def warm() -> None:
    """Compile (or load from the cache) before the first readings wait for it."""
    one = np.zeros(1)
    mix_rows(one, one, one, one, np.zeros(STATE), np.empty(1), 0.99, 0)
    mix_rows_logistic(one, one, one, one, np.ones(1), np.zeros(STATE), np.empty(1), 0.99, 0)
