"""Online linear models: standardise inside, speak raw units outside.

Features (and, for regression, the target) are standardised with running moments, so one
learning rate suits any units; the step is a robust optimizer (AdaGrad by default), the
standardised error is clipped, and L2 is optional. Parameters go in and out in the raw units of
the named features (:class:`broker.codec.LinearParams`), so learners with different scalers
average correctly and a subscriber predicts from the model message alone; the moments travel
too (:class:`broker.codec.Scaler`) and merge exactly. ``kind="binary"`` is logistic regression
(targets 0/1; predictions are probabilities).

>>> rng = np.random.default_rng(0)
>>> model = LinearModel(("a", "b"))
>>> X = rng.normal([10.0, -5.0], [2.0, 1.0], size=(20000, 2))
>>> Y = 3.0 * X[:, 0] - 4.0 * X[:, 1] + 7.0 + rng.normal(0, 0.1, 20000)
>>> _ = model.learn_many(X, Y)
>>> p = model.get_params()
>>> [round(float(v)) for v in p.weights], round(p.intercept)
([3, -4], 7)
"""

from __future__ import annotations

import numpy as np

from broker.codec import KINDS, LinearParams, Scaler
from learners import sgd_kernel
from learners.link import output  # noqa: F401  (re-exported; it lives apart from numba)
from learners.optim import AdaGrad, Optimizer
from learners.stats import std


class LinearModel:
    """Linear or logistic regression learned one sample at a time (predict, then learn)."""

    def __init__(
        self,
        features: tuple[str, ...],
        kind: str = "regression",
        optimizer: Optimizer | None = None,
        l2: float = 0.0,
        clip: float = 3.0,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if l2 < 0 or not clip > 0:
            raise ValueError("need l2 >= 0 and clip > 0")
        self.features = tuple(features)
        self.kind = kind
        self._kind = sgd_kernel.REGRESSION if kind == "regression" else sgd_kernel.BINARY
        self.optimizer = optimizer or AdaGrad()
        self.l2 = l2
        self.clip = clip
        d = len(self.features)
        self.theta = np.zeros(d + 1)
        self.memory = np.zeros(d + 1)
        self.stats = np.zeros(2)  # count, count since the last adopted model
        self.mean, self.m2 = np.zeros(d + 1), np.zeros(d + 1)
        self.dmean, self.dm2 = np.zeros(d + 1), np.zeros(d + 1)

    @property
    def n_learned(self) -> int:
        return int(self.stats[0])

    # ------------------------------------------------------------- predict / learn

    def learn_many(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Learn rows in order; return each row's prediction made *before* learning it."""
        out = np.empty(len(Y))
        opt = self.optimizer
        sgd_kernel.learn_rows(np.ascontiguousarray(X, dtype=float),
                          np.ascontiguousarray(Y, dtype=float), out, self._kind, opt.code,
                          opt.lr, opt.beta, self.l2, self.clip, self.theta, self.memory,
                          self.stats, self.mean, self.m2, self.dmean, self.dm2)
        return out

    def forget_steps(self) -> None:
        """Forget the optimizer's accumulated gradients: steps are as large as at the start."""
        self.memory[:] = 0.0

    def learn_one(self, x: np.ndarray, y: float) -> float:
        """Learn one sample; return the prediction made before learning it."""
        return float(self.learn_many(x.reshape(1, -1), np.array([y]))[0])

    def predict_many(self, X: np.ndarray) -> np.ndarray:
        out = np.empty(len(X))
        sgd_kernel.predict_rows(np.ascontiguousarray(X, dtype=float), out, self._kind,
                            self.theta, self.stats, self.mean, self.m2)
        return out

    def predict_one(self, x: np.ndarray) -> float:
        return float(self.predict_many(x.reshape(1, -1))[0])

    # ------------------------------------------------------------- what travels

    def scaler(self) -> Scaler:
        """Everything this learner's scaling knows."""
        return Scaler(self.n_learned, self.mean.copy(), self.m2.copy())

    def delta(self) -> Scaler:
        """The moments of what it learned since it adopted its last model (an update's)."""
        return Scaler(int(self.stats[1]), self.dmean.copy(), self.dm2.copy())

    def _scales(self) -> tuple[np.ndarray, np.ndarray, float, float]:
        sd = std(self.scaler())
        if self.kind == "binary":
            return self.mean[:-1], sd[:-1], 0.0, 1.0
        return self.mean[:-1], sd[:-1], float(self.mean[-1]), float(sd[-1])

    def get_params(self) -> LinearParams:
        """Weights and intercept in raw feature (and target) units."""
        mean, sd, y_mean, y_sd = self._scales()
        weights = y_sd * self.theta[:-1] / sd
        intercept = y_mean + y_sd * self.theta[-1] - float(weights @ mean)
        return LinearParams(self.features, weights, float(intercept))

    def set_params(self, params: LinearParams, scaler: Scaler | None = None,
                   delta: Scaler | None = None) -> None:
        """Adopt raw-unit parameters; with ``scaler``, also that scaling as the new base, and
        ``delta`` as what is already learned on top of it (default: nothing)."""
        if params.features != self.features:
            raise ValueError(f"model features {params.features} != learner's {self.features}")
        if scaler is not None:
            delta = delta or Scaler.empty(len(self.mean))
            if len(scaler.mean) != len(self.mean) or len(delta.mean) != len(self.mean):
                raise ValueError("the scaler does not fit these features")
            self.stats[:] = (scaler.count, delta.count)
            self.mean[:], self.m2[:] = scaler.mean, scaler.m2
            self.dmean[:], self.dm2[:] = delta.mean, delta.m2
        mean, sd, y_mean, y_sd = self._scales()
        self.theta[:-1] = params.weights * sd / y_sd
        self.theta[-1] = (params.intercept + float(params.weights @ mean) - y_mean) / y_sd
