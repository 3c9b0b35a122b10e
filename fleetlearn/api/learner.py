"""fleetlearn's online linear models as river estimators: ``learn_one(x: dict, y)`` returns
nothing, ``predict_one(x: dict)``; so river's tools (``evaluate.progressive_val_score``,
pipelines, metrics) take them.

They wrap :class:`learners.linear.LinearModel`, the gateway's learner (standardised inside,
AdaGrad, the error clipped), over a fixed feature order: ``features`` if given, else the sorted
keys of the first ``x`` learned. A feature missing from ``x`` (or None, NaN) counts as its
running mean, which moves the prediction nowhere; keys beyond the features are ignored.

>>> model = Regressor()
>>> for i in range(3000):
...     a, b = i % 7, i % 5
...     model.learn_one({"a": a, "b": b}, 3.0 * a - 2.0 * b + 1.0)
>>> round(model.predict_one({"a": 2, "b": 1}), 1), model.features
(5.0, ('a', 'b'))
>>> [round(float(w), 1) for w in model.params().weights]
[3.0, -2.0]
"""

from __future__ import annotations

import math

import numpy as np
from river import base

from broker.messages import LinearParams
from learners.imbalance import ClassWeight, parse_class_weight
from learners.linear import LinearModel
from learners.optim import Optimizer


class _Linear:
    kind = "regression"
    _class_weight = ClassWeight()

    def __init__(self, features: tuple[str, ...] | None = None,
                 optimizer: Optimizer | None = None, l2: float = 0.0, clip: float = 3.0) -> None:
        self.features = tuple(features) if features else None
        self.optimizer, self.l2, self.clip = optimizer, l2, clip
        self._model: LinearModel | None = None

    def _learner(self, x: dict) -> LinearModel:
        if self._model is None:
            self.features = self.features or tuple(sorted(x))
            self._model = LinearModel(self.features, self.kind, self.optimizer, self.l2,
                                      self.clip, self._class_weight)
        return self._model

    def _vector(self, model: LinearModel, x: dict) -> np.ndarray:
        mean = model.state.mean
        out = np.empty(len(model.features))
        for i, f in enumerate(model.features):
            v = x.get(f)
            out[i] = mean[i] if v is None or (isinstance(v, float) and math.isnan(v)) else v
        return out

    def _learn(self, x: dict, y: float) -> None:
        model = self._learner(x)
        model.learn_one(self._vector(model, x), float(y))

    def _score(self, x: dict) -> float | None:
        """The model's output (the probability, for binary), None before any learning."""
        model = self._model
        if model is None or not model.n_learned:
            return None
        return model.predict_one(self._vector(model, x))

    def params(self) -> LinearParams:
        """Weights and intercept in the raw units of :attr:`features` (a model message's)."""
        if self._model is None:
            raise ValueError("nothing learned yet")
        return self._model.to_params()


class Regressor(_Linear, base.Regressor):
    """Online linear regression (river's ``base.Regressor``)."""

    def learn_one(self, x: dict, y: float) -> None:
        self._learn(x, y)

    def predict_one(self, x: dict) -> float:
        """The prediction (0.0 before anything was learned, as river's linear models)."""
        score = self._score(x)
        return 0.0 if score is None else score


class Classifier(_Linear, base.Classifier):
    """Online logistic regression (river's binary ``base.Classifier``); labels True/False
    (or 1/0).

    >>> model = Classifier()
    >>> for i in range(2000):
    ...     model.learn_one({"t": i % 10}, i % 10 >= 5)
    >>> model.predict_one({"t": 9}), model.predict_one({"t": 0})
    (True, False)

    ``class_weight``: ``"none"``, ``"balanced"`` or ``{0: w0, 1: w1}``, as a gateway's
    (:mod:`learners.imbalance`).

    >>> Classifier(class_weight="balanced")._class_weight.balanced
    True
    """

    kind = "binary"

    def __init__(self, features: tuple[str, ...] | None = None,
                 optimizer: Optimizer | None = None, l2: float = 0.0, clip: float = 3.0,
                 class_weight: str | dict = "none") -> None:
        super().__init__(features, optimizer, l2, clip)
        self.class_weight = class_weight
        self._class_weight = parse_class_weight(class_weight)

    def learn_one(self, x: dict, y: bool) -> None:
        self._learn(x, 1.0 if y else 0.0)

    def predict_proba_one(self, x: dict) -> dict[bool, float]:
        p = self._score(x)
        return {} if p is None else {False: 1.0 - p, True: p}
