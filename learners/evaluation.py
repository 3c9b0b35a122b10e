"""Prequential (predict, then learn) evaluation from running sums, a few numpy calls a block.

The figures are river's (``metrics.MAE``, ``RMSE``, ``R2``, ``Accuracy``, ``LogLoss``, fed one
sample at a time; tests/unit/test_evaluation.py holds them equal within 1e-9), but kept as
sums updated once per block: the gateway learns a block with one kernel call, and river's
per-sample ``update`` cost more than the learning did (~1.2 µs a sample for regression, ~1.6 µs
for binary, measured on blocks of 200; now ~0.05 µs). Regression keeps n, Σ|e|, Σe² and the
target's running mean and M2 (blocks merged by Chan et al.'s parallel formula), so that
R² = 1 - SSE / M2 is river's ``R2`` (which divides by the running variance of y times n - 1).
Like river, R² is 0.0 below two samples or when every target so far was the same; every
figure is 0.0 before the first sample. Binary keeps n, the confusion counts at the decision
threshold (a probability >= it says True; a target is True when non-zero), the summed log-loss
of probabilities clipped to [1e-15, 1 - 1e-15], as river clips them, and the counts river's
``ROCAUC(n_thresholds=101)`` keeps (each class's predictions above each of 101 thresholds): so
accuracy, ``BalancedAccuracy``, ``LogLoss`` and that ``ROCAUC`` (a grid approximation of the
exact figure ``fleetlearn evaluate`` reports). The threshold is 0.5 (river's), another one
given, or None: tuned for balanced accuracy on the blocks before
(:class:`learners.imbalance.ThresholdTuner`).

>>> ev = Prequential()
>>> ev.update_many([1.0, 2.0, 3.0], [1.5, 2.0, 2.5])
>>> {k: round(v, 3) for k, v in ev.as_dict().items()}
{'n': 3, 'mae': 0.333, 'rmse': 0.408, 'r2': 0.75}
>>> {k: round(v, 3) for k, v in ev.take_window().items()}   # since the last take: MAE here
{'recent_loss': 0.333, 'recent_n': 3}
>>> ev.take_window()
{'recent_loss': 0.0, 'recent_n': 0}
>>> clf = Prequential("binary")
>>> clf.update_many([1, 0], [0.9, 0.2])
>>> {k: round(v, 3) for k, v in clf.as_dict().items()}
{'n': 2, 'accuracy': 1.0, 'balanced_accuracy': 1.0, 'log_loss': 0.164, 'roc_auc': 1.0, \
'threshold': 0.5}
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from learners.imbalance import ThresholdTuner

_P_MIN, _P_MAX = 1e-15, 1 - 1e-15  # river's ClassificationMetric._clamp_proba
#: river's ROCAUC thresholds (n_thresholds=101): i / 100, the ends moved out by 1e-7
_ROC = np.linspace(0.0, 1.0, 101)
_ROC[0], _ROC[-1] = -1e-7, 1.0 + 1e-7


class Prequential:
    """MAE, RMSE and R² (regression), or accuracy, balanced accuracy, log-loss and ROC AUC
    (binary) at the current threshold, over every prediction
    made before its sample was learned; and the mean loss (MAE, or log-loss) of a window."""

    def __init__(self, kind: str = "regression", threshold: float | None = 0.5) -> None:
        self.kind = kind
        self.tuner = ThresholdTuner() if threshold is None else None
        self.threshold = 0.5 if threshold is None else threshold
        self.n = 0
        self._loss = 0.0  # Σ|e| (regression) or Σ log-loss (binary), over everything
        self._sq = 0.0  # regression: Σe²
        self._y_mean = 0.0  # regression: the target's running mean and M2
        self._y_m2 = 0.0
        self._confusion = np.zeros((2, 2), np.int64)  # binary: [true class, said class]
        self._above = np.zeros((2, len(_ROC)), np.int64)  # binary: per class, p > each of _ROC
        self._window_loss = 0.0  # summed since the last take_window()
        self._window_n = 0

    def update_many(self, ys: Iterable[float], predictions: Iterable[float]) -> None:
        y = np.asarray(ys, dtype=np.float64)
        p = np.asarray(predictions, dtype=np.float64)
        if y.shape != p.shape or y.ndim != 1:
            raise ValueError(f"ys and predictions must be two sequences of one length, not "
                             f"shapes {y.shape} and {p.shape}")
        k = y.shape[0]
        if not k:
            return
        if self.kind == "binary":
            false = y == 0.0
            self._count_binary(~false, p)
            # the probability given to what happened: p, or 1 - p (p - 1 is exactly -(1 - p))
            p = np.abs(np.minimum(np.maximum(p, _P_MIN), _P_MAX) - false)
            loss = -float(np.log(p).sum())
        else:
            e = y - p
            loss = float(np.abs(e).sum())
            self._sq += float(e @ e)
            # the block's moments about its first target (a constant block: exactly 0), then
            # Chan et al.'s merge into the running ones
            d = y - y[0]
            shift = float(d.sum()) / k
            d -= shift
            m2 = float(d @ d)
            mean = float(y[0]) + shift
            n = self.n + k
            delta = mean - self._y_mean
            self._y_mean += delta * k / n
            self._y_m2 += m2 + delta * delta * self.n * k / n
        self.n += k
        self._loss += loss
        self._window_loss += loss
        self._window_n += k

    def _count_binary(self, true: np.ndarray, p: np.ndarray) -> None:
        said = p >= self.threshold
        for c, mine in enumerate((~true, true)):
            k = int(np.count_nonzero(mine))
            hits = int(np.count_nonzero(said[mine]))
            self._confusion[c] += (k - hits, hits)
            self._above[c] += k - np.searchsorted(np.sort(p[mine]), _ROC, side="right")
        if self.tuner is not None:
            self.tuner.update(true, p)
            self.threshold = self.tuner.threshold

    def _binary(self) -> dict[str, float]:
        cm = self._confusion
        support = cm.sum(axis=1)
        recalls = [cm[c, c] / support[c] for c in (0, 1) if support[c]]
        neg, pos = support
        tpr = self._above[1] / pos if pos else np.zeros(len(_ROC))
        fpr = self._above[0] / neg if neg else np.zeros(len(_ROC))
        auc = -float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0))
        return {"accuracy": float(np.trace(cm)) / self.n,
                "balanced_accuracy": float(np.mean(recalls)) if recalls else 0.0,
                "log_loss": self._loss / self.n, "roc_auc": auc}

    def as_dict(self) -> dict[str, float]:
        n = self.n
        if self.kind == "binary":
            figures = self._binary() if n else dict.fromkeys(
                ("accuracy", "balanced_accuracy", "log_loss", "roc_auc"), 0.0)
            return {"n": n, **figures, "threshold": self.threshold}
        if not n:
            return {"n": 0, "mae": 0.0, "rmse": 0.0, "r2": 0.0}
        r2 = 1.0 - self._sq / self._y_m2 if n > 1 and self._y_m2 else 0.0
        return {"n": n, "mae": self._loss / n, "rmse": math.sqrt(self._sq / n), "r2": r2}

    def take_window(self) -> dict[str, float]:
        """The mean loss since the previous call, and its sample count; starts a new window."""
        loss, n = self._window_loss, self._window_n
        self._window_loss, self._window_n = 0.0, 0
        return {"recent_loss": loss / n if n else 0.0, "recent_n": n}
