"""Prequential figures of a set of predictions: river's definitions, computed at once.

Regression: MAE, RMSE and R² = 1 - SSE / Σ(y - ȳ)² (river's ``R2``). Binary (targets 0/1,
predictions probabilities): accuracy (p >= the threshold, 0.5 unless given, says 1; a threshold
may be given per sample, as an online tuner chose it), balanced accuracy (the mean recall of
the classes present, river's ``BalancedAccuracy``), log-loss (probabilities clipped to
[1e-15, 1 - 1e-15], as river) and ROC AUC, exact (the Mann-Whitney statistic, ties counted
half; river's ``ROCAUC`` approximates it on a grid of thresholds).

>>> y, p = np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.5])
>>> {k: round(v, 3) for k, v in score("regression", y, p).items()}
{'n': 3, 'mae': 0.333, 'rmse': 0.408, 'r2': 0.75}
>>> s = score("binary", np.array([0, 0, 1, 1.0]), np.array([0.1, 0.6, 0.4, 0.9]))
>>> s["accuracy"], s["balanced_accuracy"], s["roc_auc"], round(s["log_loss"], 3)
(0.5, 0.5, 0.75, 0.511)
"""

from __future__ import annotations

import math

import numpy as np

_P_MIN, _P_MAX = 1e-15, 1 - 1e-15

#: The figures of each kind, in the table's order.
FIGURES = {"regression": ("mae", "rmse", "r2"),
           "binary": ("accuracy", "balanced_accuracy", "log_loss", "roc_auc")}


def score(kind: str, y: np.ndarray, p: np.ndarray,
          threshold: float | np.ndarray = 0.5) -> dict[str, float]:
    """The figures of predictions ``p`` of targets ``y`` (0.0 each, with no samples)."""
    n = len(y)
    if not n:
        return {"n": 0, **dict.fromkeys(FIGURES[kind], 0.0)}
    if kind == "binary":
        return {"n": n, **_binary(y != 0, p, threshold)}
    e = y - p
    sst = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(e @ e) / sst if n > 1 and sst else 0.0
    return {"n": n, "mae": float(np.abs(e).mean()), "rmse": math.sqrt(float(e @ e) / n),
            "r2": r2}


def _binary(true: np.ndarray, p: np.ndarray, threshold: float | np.ndarray
            ) -> dict[str, float]:
    said = p >= threshold
    recalls = [float(np.mean(said[true == c] == c)) for c in (False, True) if (true == c).any()]
    q = np.clip(p, _P_MIN, _P_MAX)
    loss = -float(np.mean(np.log(np.where(true, q, 1.0 - q))))
    return {"accuracy": float(np.mean(said == true)), "balanced_accuracy": float(np.mean(recalls)),
            "log_loss": loss, "roc_auc": roc_auc(true, p)}


def roc_auc(true: np.ndarray, p: np.ndarray) -> float:
    """The chance a positive is scored above a negative (ties: half); 0.5 with one class.

    >>> roc_auc(np.array([False, True, True]), np.array([0.2, 0.2, 0.9]))
    0.75
    """
    pos, neg = int(true.sum()), int((~true).sum())
    if not pos or not neg:
        return 0.5
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    sorted_p = p[order]
    # average ranks of ties (1-based)
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    mean_rank = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(mean_rank, counts)
    return float((ranks[true].sum() - pos * (pos + 1) / 2.0) / (pos * neg))
