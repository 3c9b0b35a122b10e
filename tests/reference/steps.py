"""The reference of ``lr = "auto"``'s shadows (:class:`learners.steps.StepSearch`), one
sample at a time: one reference learner per step, each predicting then learning every sample,
its prequential loss summed (squared error, or log-loss for ``binary``; a blank learner's
first guess not scored); the best step is the least loss's, the grid's step below its middle
before ``warmup`` scored samples.

>>> ref = ReferenceSteps.blank((0.1, 0.3, 0.9), d=1, optimizer="adagrad")
>>> ref.learn(np.array([[1.0], [2.0], [3.0]]), np.array([2.0, 4.0, 6.0]))
>>> ref.n, ref.best(warmup=1000)
(2, 0.1)
"""

from __future__ import annotations

import math

import numpy as np

from tests.reference.learner import ReferenceLearner


class ReferenceSteps:
    def __init__(self, steps: tuple[float, ...], learners: list[ReferenceLearner]) -> None:
        self.steps = steps
        self.learners = learners
        self.loss = [0.0] * len(steps)
        self.n = 0

    @classmethod
    def blank(cls, steps: tuple[float, ...], d: int, kind: str = "regression",
              optimizer: str = "adagrad", beta: float = 0.0) -> ReferenceSteps:
        return cls(steps, [ReferenceLearner.blank(d, kind, optimizer, lr, beta)
                           for lr in steps])

    def learn(self, X: np.ndarray, Y: np.ndarray) -> None:
        for x, y in zip(X, Y, strict=True):
            scored = self.learners[0].count > 0
            for i, learner in enumerate(self.learners):
                p = learner.predict(x)
                learner.learn(x, float(y))
                if not scored:
                    continue
                if learner.kind == "binary":
                    q = min(max(p, 1e-15), 1 - 1e-15)
                    self.loss[i] -= math.log(q if y > 0.5 else 1 - q)
                else:
                    self.loss[i] += (y - p) ** 2
            self.n += scored

    def best(self, warmup: int) -> float:
        if self.n < warmup:  # the step below the middle
            return self.steps[max(0, len(self.steps) // 2 - 1)]
        losses = [v if math.isfinite(v) else math.inf for v in self.loss]
        return self.steps[losses.index(min(losses))]
