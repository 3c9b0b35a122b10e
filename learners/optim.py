"""Optimizers: how a gradient becomes a step, apart from the model that computes it.

Each one's ``step`` is the readable numpy reference; :mod:`learners.sgd_kernel` runs the same
arithmetic compiled (selected by ``code``), and the tests hold the two equal.

>>> w = np.zeros(2)
>>> SGD(lr=0.5).step(w, np.array([1.0, -2.0]))
>>> w.tolist()
[-0.5, 1.0]
"""

from __future__ import annotations

import numpy as np

from learners import sgd_kernel

EPS = 1e-8


class Optimizer:
    code: int
    lr: float
    beta: float = 0.0

    def __init__(self, lr: float) -> None:
        if not lr > 0:
            raise ValueError("the learning rate must be > 0")
        self.lr = lr

    def step(self, params: np.ndarray, grad: np.ndarray, memory: np.ndarray) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr})"


class SGD(Optimizer):
    """Plain stochastic gradient descent with a constant step."""

    code = sgd_kernel.SGD

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__(lr)

    def step(self, params: np.ndarray, grad: np.ndarray, memory: np.ndarray | None = None
             ) -> None:
        params -= self.lr * grad


class AdaGrad(Optimizer):
    """Per-coordinate steps that shrink with the whole gradient history.

    >>> w, memory = np.zeros(1), np.zeros(1)
    >>> AdaGrad(lr=1.0).step(w, np.array([2.0]), memory); round(float(w[0]), 6)
    -1.0
    """

    code = sgd_kernel.ADAGRAD

    def __init__(self, lr: float = 0.3) -> None:
        super().__init__(lr)

    def step(self, params: np.ndarray, grad: np.ndarray, memory: np.ndarray) -> None:
        memory += grad * grad
        params -= self.lr * grad / (np.sqrt(memory) + EPS)


class RMSProp(Optimizer):
    """Per-coordinate steps scaled by a moving average of squared gradients: they do not die
    out, so the model keeps tracking a stream that changes (seasons, drift).

    >>> w, memory = np.zeros(1), np.zeros(1)
    >>> RMSProp(lr=0.1, beta=0.75).step(w, np.array([2.0]), memory); round(float(w[0]), 6)
    -0.2
    """

    code = sgd_kernel.RMSPROP

    def __init__(self, lr: float = 0.01, beta: float = 0.99) -> None:
        super().__init__(lr)
        if not 0.0 < beta < 1.0:
            raise ValueError("beta must be in (0, 1)")
        self.beta = beta

    def step(self, params: np.ndarray, grad: np.ndarray, memory: np.ndarray) -> None:
        memory *= self.beta
        memory += (1.0 - self.beta) * grad * grad
        params -= self.lr * grad / (np.sqrt(memory) + EPS)


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adagrad": AdaGrad, "rmsprop": RMSProp}


def make_optimizer(name: str, lr: float | None = None) -> Optimizer:
    """An optimizer by name, with its default step unless ``lr`` is given.

    >>> make_optimizer("adagrad")
    AdaGrad(lr=0.3)
    """
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {name!r}"
                         ) from None
    return cls() if lr is None else cls(lr=lr)
