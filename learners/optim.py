"""Optimizers: how a gradient becomes a step, as settings of the compiled kernel.

:mod:`learners.sgd_kernel` runs each one's step (selected by ``code``); their readable
reference is ``tests/reference/learner.py``, and the tests hold the two equal.

>>> SGD(lr=0.5), SGD.code == sgd_kernel.SGD
(SGD(lr=0.5), True)
"""

from __future__ import annotations

from learners import sgd_kernel


class Optimizer:
    code: int
    lr: float
    beta: float = 0.0

    def __init__(self, lr: float) -> None:
        if not lr > 0:
            raise ValueError("the learning rate must be > 0")
        self.lr = lr

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr})"


class SGD(Optimizer):
    """Plain stochastic gradient descent with a constant step."""

    code = sgd_kernel.SGD

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__(lr)


class AdaGrad(Optimizer):
    """Per-coordinate steps that shrink with the whole gradient history (lr / sqrt of the sum
    of squared gradients)."""

    code = sgd_kernel.ADAGRAD

    def __init__(self, lr: float = 0.3) -> None:
        super().__init__(lr)


class RMSProp(Optimizer):
    """Per-coordinate steps scaled by a moving average of squared gradients: they do not die
    out, so the model keeps tracking a stream that changes (seasons, drift).

    >>> RMSProp(lr=0.1, beta=0.75).beta
    0.75
    """

    code = sgd_kernel.RMSPROP

    def __init__(self, lr: float = 0.01, beta: float = 0.99) -> None:
        super().__init__(lr)
        if not 0.0 < beta < 1.0:
            raise ValueError("beta must be in (0, 1)")
        self.beta = beta


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
