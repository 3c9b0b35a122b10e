"""Aggregation math, free of transport: lists of parameters in, parameters out.

>>> a = LinearParams(("x",), np.array([1.0]), 0.0)
>>> b = LinearParams(("x",), np.array([4.0]), 3.0)
>>> merged = fedavg([(a, 2), (b, 1)])
>>> merged.weights.tolist(), merged.intercept
([2.0], 1.0)
"""

from __future__ import annotations

import numpy as np

from broker.codec import LinearParams


class AggregationError(ValueError):
    """Parameters that cannot be merged."""


def fedavg(results: list[tuple[LinearParams, int]]) -> LinearParams:
    """Sample-weighted average of the learners' parameters (FedAvg)."""
    if not results:
        raise AggregationError("nothing to aggregate")
    features = results[0][0].features
    if any(params.features != features for params, _ in results):
        raise AggregationError("updates name different features")
    counts = np.array([n for _, n in results], dtype=float)
    if np.any(counts <= 0):
        raise AggregationError("every update needs a positive sample count")
    share = counts / counts.sum()
    weights = np.stack([params.weights for params, _ in results])
    intercepts = np.array([params.intercept for params, _ in results])
    return LinearParams(features, share @ weights, float(share @ intercepts))
