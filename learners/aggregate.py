"""Aggregation math, free of transport: parameter vectors in, one parameter vector out.

A model's parameters are handled as one vector, the weights then the intercept, in raw feature
units. The strategies (:mod:`learners.strategies`) merge the learners' *changes* to the model
(deltas) with one of these rules: the sample-weighted mean (FedAvg), the coordinate-wise median,
or the trimmed mean; each may first clip every delta to a norm.

>>> a = as_vector(LinearParams(("x",), np.array([1.0]), 0.0))
>>> b = as_vector(LinearParams(("x",), np.array([4.0]), 3.0))
>>> as_params(("x",), weighted_mean(np.stack([a, b]), np.array([2.0, 1.0])))
LinearParams(features=('x',), weights=array([2.]), intercept=1.0)
"""

from __future__ import annotations

import numpy as np

from broker.messages import LinearParams, Scaler
from learners.stats import std

RULES = ("mean", "median", "trimmed")


class AggregationError(ValueError):
    """Parameters that cannot be merged."""


def as_vector(params: LinearParams) -> np.ndarray:
    """The weights then the intercept, as one vector.

    >>> as_vector(LinearParams(("a", "b"), np.array([1.0, 2.0]), 3.0)).tolist()
    [1.0, 2.0, 3.0]
    """
    return np.append(params.weights, params.intercept)


def as_params(features: tuple[str, ...], vector: np.ndarray) -> LinearParams:
    """The inverse of :func:`as_vector`.

    >>> as_params(("a",), np.array([2.0, 5.0]))
    LinearParams(features=('a',), weights=array([2.]), intercept=5.0)
    """
    return LinearParams(features, np.array(vector[:-1], dtype=float), float(vector[-1]))


def weighted_mean(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Row average with non-negative weights (FedAvg's rule).

    >>> weighted_mean(np.array([[0.0, 1.0], [3.0, 6.0]]), np.array([2.0, 1.0])).tolist()
    [1.0, 2.6666666666666665]
    """
    if len(vectors) == 0:
        raise AggregationError("nothing to aggregate")
    if np.any(weights < 0) or not weights.sum() > 0:
        raise AggregationError("every contribution needs a positive weight")
    return (weights / weights.sum()) @ vectors


def coordinate_median(vectors: np.ndarray) -> np.ndarray:
    """Coordinate-wise median: one wild row cannot move it far.

    >>> coordinate_median(np.array([[1.0, 0.0], [2.0, 0.0], [900.0, -50.0]])).tolist()
    [2.0, 0.0]
    """
    if len(vectors) == 0:
        raise AggregationError("nothing to aggregate")
    return np.median(vectors, axis=0)


def trimmed_mean(vectors: np.ndarray, weights: np.ndarray, trim: float) -> np.ndarray:
    """Per coordinate, drop the ``trim`` share of rows at each end, then the weighted mean.

    At least one row is dropped at each end when there are three or more rows and ``trim`` > 0.

    >>> rows = np.array([[1.0], [2.0], [3.0], [-400.0], [500.0]])
    >>> trimmed_mean(rows, np.ones(5), 0.2).tolist()
    [2.0]
    """
    k = len(vectors)
    if k == 0:
        raise AggregationError("nothing to aggregate")
    if not 0.0 <= trim < 0.5:
        raise AggregationError("trim must be in [0, 0.5)")
    cut = int(np.floor(trim * k))
    if trim > 0 and cut == 0 and k >= 3:
        cut = 1
    if cut == 0:
        return weighted_mean(vectors, weights)
    order = np.argsort(vectors, axis=0)[cut:k - cut]  # rows kept, per coordinate
    kept = np.take_along_axis(vectors, order, axis=0)
    w = weights[order]
    return (kept * w).sum(axis=0) / w.sum(axis=0)


def standard_units(deltas: np.ndarray, scaler: Scaler | None, kind: str) -> np.ndarray:
    """Parameter changes in the learners' standardised units (so a norm is unit-free).

    Weights scale by feature sd / target sd; the intercept's change also takes the weights'
    change at the feature means (as a learner's standardised intercept does).

    >>> s = Scaler(4, np.array([10.0, 0.0]), np.array([4 * 4.0, 4 * 1.0]))
    >>> standard_units(np.array([[1.0, 0.0]]), s, "regression").tolist()
    [[2.0, 10.0]]
    """
    if scaler is None or scaler.count < 2:
        return deltas
    sd = std(scaler)
    mean = scaler.mean
    y_sd = 1.0 if kind == "binary" else sd[-1]
    out = np.empty_like(deltas)
    out[:, :-1] = deltas[:, :-1] * sd[:-1] / y_sd
    out[:, -1] = (deltas[:, -1] + deltas[:, :-1] @ mean[:-1]) / y_sd
    return out


def clip_by_norm(deltas: np.ndarray, max_norm: float, scaler: Scaler | None = None,
                 kind: str = "regression") -> tuple[np.ndarray, int]:
    """Shrink each delta whose norm (in standardised units) exceeds ``max_norm``; how many were.

    >>> clipped, n = clip_by_norm(np.array([[3.0, 4.0], [0.3, 0.4]]), 1.0)
    >>> clipped.round(6).tolist(), n
    ([[0.6, 0.8], [0.3, 0.4]], 1)
    """
    norms = np.linalg.norm(standard_units(deltas, scaler, kind), axis=1)
    factor = np.minimum(1.0, max_norm / np.maximum(norms, 1e-300))
    return deltas * factor[:, None], int(np.sum(factor < 1.0))


def combine(deltas: np.ndarray, weights: np.ndarray, rule: str = "mean",
            trim: float = 0.2) -> np.ndarray:
    """Merge rows by a rule: ``mean`` (weighted), ``median`` or ``trimmed`` (weighted).

    >>> rows = np.array([[1.0], [1.2], [0.8], [1.1], [-100.0]])
    >>> [round(float(combine(rows, np.ones(5), r)[0]), 3) for r in RULES]
    [-19.18, 1.0, 0.967]
    """
    if rule == "mean":
        return weighted_mean(deltas, weights)
    if rule == "median":
        return coordinate_median(deltas)
    if rule == "trimmed":
        return trimmed_mean(deltas, weights, trim)
    raise AggregationError(f"merge rule must be one of {', '.join(RULES)}, not {rule!r}")
