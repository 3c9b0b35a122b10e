"""Optimizers: how a gradient becomes a step, apart from the model that computes it.

>>> w = np.zeros(2)
>>> SGD(lr=0.5).step(w, np.array([1.0, -2.0]))
>>> w.tolist()
[-0.5, 1.0]
"""

from __future__ import annotations

import numpy as np


class SGD:
    """Plain stochastic gradient descent with a constant step."""

    def __init__(self, lr: float = 0.01) -> None:
        if not lr > 0:
            raise ValueError("lr must be > 0")
        self.lr = lr

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        params -= self.lr * grad


class AdaGrad:
    """Per-coordinate steps that shrink with the gradient history.

    >>> w = np.zeros(1)
    >>> opt = AdaGrad(lr=1.0)
    >>> opt.step(w, np.array([2.0])); round(float(w[0]), 6)
    -1.0
    """

    def __init__(self, lr: float = 0.1, eps: float = 1e-8) -> None:
        if not lr > 0:
            raise ValueError("lr must be > 0")
        self.lr = lr
        self.eps = eps
        self._g2: np.ndarray | None = None

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        if self._g2 is None or self._g2.shape != grad.shape:
            self._g2 = np.zeros_like(grad)
        self._g2 += grad * grad
        params -= self.lr * grad / (np.sqrt(self._g2) + self.eps)
