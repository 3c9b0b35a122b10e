"""An online linear regressor in numpy: standardises inside, speaks raw units outside.

Features and target are standardised with running moments, so one learning rate suits any
units; parameters go in and out in the raw units of the named features (see
:class:`broker.codec.LinearParams`), so learners with different scalers average correctly.

>>> rng = np.random.default_rng(0)
>>> model = LinearRegressor(("a", "b"))
>>> for _ in range(3000):
...     x = rng.normal([10.0, -5.0], [2.0, 0.5])
...     _ = model.learn_one(x, 3.0 * x[0] - 4.0 * x[1] + 7.0 + rng.normal(0, 0.1))
>>> p = model.get_params()
>>> [round(float(v), 1) for v in p.weights], round(p.intercept)
([3.0, -4.0], 7)
"""

from __future__ import annotations

import numpy as np

from broker.codec import LinearParams
from learners.optim import SGD
from learners.stats import RunningMoments


class LinearRegressor:
    """Squared-loss linear regression learned one sample at a time (predict, then learn)."""

    def __init__(
        self,
        features: tuple[str, ...],
        optimizer=None,
        l2: float = 0.0,
        clip: float = 5.0,
    ) -> None:
        self.features = tuple(features)
        self.optimizer = optimizer or SGD(lr=0.01)
        self.l2 = l2
        self.clip = clip
        size = len(self.features)
        self.theta = np.zeros(size + 1)  # standardised weights, then intercept
        self.x_moments = RunningMoments(size)
        self.y_moments = RunningMoments(1)
        self.n_learned = 0

    # ------------------------------------------------------------- predict / learn

    def vector(self, values: dict[str, float]) -> np.ndarray:
        """The feature vector of a dict of channel values, in this model's order."""
        return np.fromiter((values[f] for f in self.features), float, len(self.features))

    def _predict_std(self, z: np.ndarray) -> float:
        return float(z @ self.theta[:-1] + self.theta[-1])

    def predict_one(self, x: np.ndarray) -> float:
        """Prediction in target units for a raw feature vector."""
        z = (x - self.x_moments.mean) / self.x_moments.std
        y_sd = float(self.y_moments.std[0])
        return self._predict_std(z) * y_sd + float(self.y_moments.mean[0])

    def learn_one(self, x: np.ndarray, y: float) -> float:
        """Learn from one sample and return the prediction made *before* learning."""
        y_hat = self.predict_one(x)
        self.x_moments.update(x)
        self.y_moments.update(np.array([y]))
        z = (x - self.x_moments.mean) / self.x_moments.std
        y_z = (y - float(self.y_moments.mean[0])) / float(self.y_moments.std[0])
        err = min(max(self._predict_std(z) - y_z, -self.clip), self.clip)
        grad = np.empty_like(self.theta)
        grad[:-1] = err * z + self.l2 * self.theta[:-1]
        grad[-1] = err
        self.optimizer.step(self.theta, grad)
        self.n_learned += 1
        return y_hat

    # ------------------------------------------------------------- parameters in raw units

    def get_params(self) -> LinearParams:
        mean, sd = self.x_moments.mean, self.x_moments.std
        y_mean, y_sd = float(self.y_moments.mean[0]), float(self.y_moments.std[0])
        w_std, b_std = self.theta[:-1], self.theta[-1]
        weights = y_sd * w_std / sd
        intercept = y_mean + y_sd * b_std - float(weights @ mean)
        return LinearParams(self.features, weights, float(intercept))

    def set_params(self, params: LinearParams) -> None:
        """Adopt raw-unit parameters, expressed in this learner's current scaling."""
        if params.features != self.features:
            raise ValueError(f"model features {params.features} != learner's {self.features}")
        mean, sd = self.x_moments.mean, self.x_moments.std
        y_mean, y_sd = float(self.y_moments.mean[0]), float(self.y_moments.std[0])
        self.theta[:-1] = params.weights * sd / y_sd
        self.theta[-1] = (params.intercept + float(params.weights @ mean) - y_mean) / y_sd
