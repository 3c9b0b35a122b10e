"""The reference learner: what :mod:`learners.sgd_kernel` computes, in readable numpy, one
sample at a time (the oracle the compiled kernel is tested against), with the reference FedAvg
and batch moments the aggregation and the scalers are tested against.

A linear model standardises its inputs with running moments (Welford) of everything it learned,
and, for regression, its target too; it predicts, then folds the sample into the moments, then
takes one optimizer step on the gradient of the (clipped, standardised) squared error, or of
the log loss for ``binary``, plus L2.

>>> learner = ReferenceLearner.blank(1, optimizer="sgd", lr=0.5)
>>> learner.predict_then_learn(np.array([[1.0], [3.0]]), np.array([2.0, 6.0]))
[0.0, 2.0]
>>> learner.count, learner.mean.tolist(), learner.m2.tolist()
(2, [2.0, 4.0], [2.0, 8.0])
>>> w = np.zeros(2)
>>> STEPS["sgd"](w, np.array([1.0, -2.0]), np.zeros(2), lr=0.5, beta=0.0); w.tolist()
[-0.5, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from broker.messages import LinearParams, Scaler

EPS = 1e-8
BALANCE_PRIOR = 100.0  # samples of each class counted before the first (balanced weights)


# ----------------------------------------------------------------------- optimizer steps

def sgd_step(params: np.ndarray, grad: np.ndarray, memory: np.ndarray, lr: float,
             beta: float) -> None:
    """A constant step against the gradient."""
    params -= lr * grad


def adagrad_step(params: np.ndarray, grad: np.ndarray, memory: np.ndarray, lr: float,
                 beta: float) -> None:
    """Per coordinate, lr over the root of the sum of every squared gradient so far.

    >>> w, memory = np.zeros(1), np.zeros(1)
    >>> adagrad_step(w, np.array([2.0]), memory, lr=1.0, beta=0.0); round(float(w[0]), 6)
    -1.0
    """
    memory += grad * grad
    params -= lr * grad / (np.sqrt(memory) + EPS)


def rmsprop_step(params: np.ndarray, grad: np.ndarray, memory: np.ndarray, lr: float,
                 beta: float) -> None:
    """Per coordinate, lr over the root of a moving average of squared gradients.

    >>> w, memory = np.zeros(1), np.zeros(1)
    >>> rmsprop_step(w, np.array([2.0]), memory, lr=0.1, beta=0.75); round(float(w[0]), 6)
    -0.2
    """
    memory *= beta
    memory += (1.0 - beta) * grad * grad
    params -= lr * grad / (np.sqrt(memory) + EPS)


STEPS = {"sgd": sgd_step, "adagrad": adagrad_step, "rmsprop": rmsprop_step}


# ----------------------------------------------------------------------- the learner

def std(m2: np.ndarray, count: float) -> np.ndarray:
    """Population standard deviation; 1 where it is not yet defined or is zero."""
    if count < 2:
        return np.ones_like(m2)
    sd = np.sqrt(m2 / count)
    return np.where(sd > 1e-12, sd, 1.0)


def sigmoid(s: float) -> float:
    return 1.0 / (1.0 + math.exp(-s)) if s >= 0 else math.exp(s) / (1.0 + math.exp(s))


@dataclass
class ReferenceLearner:
    """One model's settings and state (arrays of length d + 1: features then target)."""

    kind: str  # "regression" or "binary"
    optimizer: str  # a key of STEPS
    lr: float
    beta: float
    l2: float
    clip: float
    theta: np.ndarray  # standardised weights, then the intercept
    memory: np.ndarray  # the optimizer's
    count: float
    dcount: float  # samples since the last adopted model
    mean: np.ndarray
    m2: np.ndarray
    dmean: np.ndarray  # moments since the last adopted model
    dm2: np.ndarray
    #: binary: "none", "balanced", or (w0, w1), the weight of each class's log-loss
    class_weight: str | tuple[float, float] = "none"

    @classmethod
    def blank(cls, d: int, kind: str = "regression", optimizer: str = "adagrad",
              lr: float = 0.3, beta: float = 0.0, l2: float = 0.0,
              clip: float = 3.0,
              class_weight: str | tuple[float, float] = "none") -> ReferenceLearner:
        z = np.zeros(d + 1)
        return cls(kind, optimizer, lr, beta, l2, clip, z.copy(), z.copy(), 0, 0, z.copy(),
                   z.copy(), z.copy(), z.copy(), class_weight)

    def score(self, x: np.ndarray) -> float:
        """The standardised linear score of x."""
        z = (x - self.mean[:-1]) / std(self.m2, self.count)[:-1]
        return float(self.theta[-1] + sum(w * v for w, v in zip(self.theta[:-1], z, strict=True)))

    def predict(self, x: np.ndarray) -> float:
        """In target units (regression), or the probability of 1 (binary)."""
        s = self.score(x)
        if self.kind == "binary":
            return sigmoid(s)
        return float(self.mean[-1] + std(self.m2, self.count)[-1] * s)

    def fold(self, v: np.ndarray) -> None:
        """Welford: the sample (features then target) into both sets of moments."""
        self.count += 1
        self.dcount += 1
        delta = v - self.mean
        self.mean = self.mean + delta / self.count
        self.m2 = self.m2 + delta * (v - self.mean)
        delta = v - self.dmean
        self.dmean = self.dmean + delta / self.dcount
        self.dm2 = self.dm2 + delta * (v - self.dmean)

    def weight(self, y: float) -> float:
        """A sample's class weight (after it is folded in): given, or balanced, n / (2 n_c)
        with n_c counted from the running mean of the 0/1 target, and both counts starting at
        ``BALANCE_PRIOR`` samples of each class.

        >>> learner = ReferenceLearner.blank(1, "binary", class_weight="balanced")
        >>> for y in [0.0] * 300 + [1.0] * 100: learner.fold(np.array([0.0, y]))
        >>> round(learner.weight(1.0), 4), round(learner.weight(0.0), 4)  # 600/400, 600/800
        (1.5, 0.75)
        """
        if self.class_weight == "none":
            return 1.0
        if self.class_weight != "balanced":
            return float(self.class_weight[int(y != 0)])
        ones = self.mean[-1] * self.count
        n_class = ones if y != 0 else self.count - ones
        return float((self.count + 2 * BALANCE_PRIOR) / (2 * (n_class + BALANCE_PRIOR)))

    def learn(self, x: np.ndarray, y: float) -> None:
        """Fold the sample into the moments, then step on it in the updated scaling."""
        self.fold(np.append(x, y))
        sd = std(self.m2, self.count)
        s = self.score(x)
        if self.kind == "binary":
            err = (sigmoid(s) - y) * self.weight(y)
        else:
            err = float(np.clip(s - (y - self.mean[-1]) / sd[-1], -self.clip, self.clip))
        z = (x - self.mean[:-1]) / sd[:-1]
        grad = np.append(err * z + self.l2 * self.theta[:-1], err)
        # a feature's step memory is at least the intercept's (which every sample feeds)
        self.memory[:-1] = np.maximum(self.memory[:-1], self.memory[-1])
        STEPS[self.optimizer](self.theta, grad, self.memory, self.lr, self.beta)

    def predict_then_learn(self, X: np.ndarray, Y: np.ndarray) -> list[float]:
        """Each row predicted, then learned, in order: the predictions."""
        out = []
        for x, y in zip(X, Y, strict=True):
            out.append(self.predict(x))
            self.learn(x, float(y))
        return out


# ----------------------------------------------------------------------- fleet math

def moments_of(rows: np.ndarray) -> Scaler:
    """The moments of a block of rows, in one pass of numpy.

    >>> moments_of(np.array([[1.0], [2.0], [3.0]]))
    Scaler(count=3, mean=array([2.]), m2=array([2.]))
    """
    if len(rows) == 0:
        return Scaler.empty(rows.shape[1])
    mean = rows.mean(axis=0)
    return Scaler(len(rows), mean, ((rows - mean) ** 2).sum(axis=0))


def fedavg(results: list[tuple[LinearParams, int]]) -> LinearParams:
    """FedAvg: the learners' weights and intercepts averaged, each weighted by its samples.

    >>> a = LinearParams(("x",), np.array([1.0]), 0.0)
    >>> b = LinearParams(("x",), np.array([4.0]), 3.0)
    >>> merged = fedavg([(a, 2), (b, 1)])
    >>> merged.weights.tolist(), merged.intercept
    ([2.0], 1.0)
    """
    if not results:
        raise ValueError("nothing to aggregate")
    features = results[0][0].features
    if any(params.features != features for params, _ in results):
        raise ValueError("updates name different features")
    total = sum(n for _, n in results)
    weights = sum(n * params.weights for params, n in results) / total
    intercept = sum(n * params.intercept for params, n in results) / total
    return LinearParams(features, np.asarray(weights, dtype=float), float(intercept))
