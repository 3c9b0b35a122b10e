"""Online linear models: standardise inside, speak raw units outside.

Features (and, for regression, the target) are standardised with running moments, so one
learning rate suits any units; the step is a robust optimizer (AdaGrad by default), the
standardised error is clipped, and L2 is optional. Parameters go in and out in the raw units of
the named features (:class:`broker.messages.LinearParams`), so learners with different scalers
average correctly and a subscriber predicts from the model message alone; the moments travel
too (:class:`broker.messages.Scaler`) and merge exactly. ``kind="binary"`` is logistic
regression (targets 0/1; predictions are probabilities), with optional class weights
(:mod:`learners.imbalance`).

>>> rng = np.random.default_rng(0)
>>> model = LinearModel(("a", "b"))
>>> X = rng.normal([10.0, -5.0], [2.0, 1.0], size=(20000, 2))
>>> Y = 3.0 * X[:, 0] - 4.0 * X[:, 1] + 7.0 + rng.normal(0, 0.1, 20000)
>>> _ = model.predict_then_learn(X, Y)
>>> p = model.to_params()
>>> [round(float(v)) for v in p.weights], round(p.intercept)
([3, -4], 7)
>>> model.learn_one(np.array([10.0, -5.0]), 57.0)  # river's meaning: learn, return nothing
>>> round(model.predict_one(np.array([10.0, -5.0])))
57
"""

from __future__ import annotations

import numpy as np

from broker.messages import KINDS, LinearParams, Scaler
from learners.imbalance import ClassWeight
from learners.optim import AdaGrad, Optimizer
from learners.sgd_kernel import (
    BINARY,
    REGRESSION,
    SGDSettings,
    SGDState,
    predict_rows,
    predict_then_learn_row,
    predict_then_learn_rows,
)
from learners.stats import std, varied


class LinearModel:
    """Linear or logistic regression learned one sample at a time (predict, then learn).

    Its settings are fixed at construction (:attr:`settings`); what it knows is
    :attr:`state`, arrays the compiled kernel (:mod:`learners.sgd_kernel`) updates in place."""

    def __init__(
        self,
        features: tuple[str, ...],
        kind: str = "regression",
        optimizer: Optimizer | None = None,
        l2: float = 0.0,
        clip: float = 3.0,
        class_weight: ClassWeight = ClassWeight(),
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if l2 < 0 or not clip > 0:
            raise ValueError("need l2 >= 0 and clip > 0")
        self.features = tuple(features)
        self.kind = kind
        self.optimizer = optimizer or AdaGrad()
        self.settings = SGDSettings(REGRESSION if kind == "regression" else BINARY,
                                    self.optimizer.code, float(self.optimizer.lr),
                                    float(self.optimizer.beta), float(l2), float(clip),
                                    int(class_weight.balanced), float(class_weight.w0),
                                    float(class_weight.w1))
        self.state = SGDState.zeros(len(self.features))
        # the same, as plain tuples for the per-reading kernel (its arrays change in place only)
        self._row_args = (tuple(self.settings), tuple(self.state))

    @property
    def n_learned(self) -> int:
        return int(self.state.counts[0])

    # ------------------------------------------------------------- predict / learn

    def predict_then_learn(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Learn rows in order; return each row's prediction made *before* learning it."""
        out = np.empty(len(Y))
        predict_then_learn_rows(np.ascontiguousarray(X, dtype=float),
                                np.ascontiguousarray(Y, dtype=float), out, self.settings,
                                self.state)
        return out

    def predict_then_learn_one(self, x: np.ndarray, y: float) -> float:
        """Learn one sample; return the prediction made before learning it."""
        return predict_then_learn_row(np.ascontiguousarray(x, dtype=float), float(y),
                                      *self._row_args)

    def learn_one(self, x: np.ndarray, y: float) -> None:
        """Learn one sample (as river's ``learn_one``: nothing is returned)."""
        self.predict_then_learn_one(x, y)

    def predict_many(self, X: np.ndarray) -> np.ndarray:
        out = np.empty(len(X))
        predict_rows(np.ascontiguousarray(X, dtype=float), out, self.settings, self.state)
        return out

    def predict_one(self, x: np.ndarray) -> float:
        return float(self.predict_many(x.reshape(1, -1))[0])

    @property
    def lr(self) -> float:
        return self.settings.lr

    def set_lr(self, lr: float) -> None:
        """Take another step size from now on (the optimizer's memory stays).

        >>> model = LinearModel(("a",)); model.set_lr(0.1); model.lr
        0.1
        """
        if not lr > 0:
            raise ValueError("the learning rate must be > 0")
        self.settings = self.settings._replace(lr=float(lr))
        self._row_args = (tuple(self.settings), tuple(self.state))

    def forget_steps(self) -> None:
        """Forget the optimizer's accumulated gradients: steps are as large as at the start."""
        self.state.memory[:] = 0.0

    # ------------------------------------------------------------- what travels

    def scaler(self) -> Scaler:
        """Everything this learner's scaling knows."""
        return Scaler(self.n_learned, self.state.mean.copy(), self.state.m2.copy())

    def delta(self) -> Scaler:
        """The moments of what it learned since it adopted its last model (an update's)."""
        state = self.state
        return Scaler(int(state.counts[1]), state.dmean.copy(), state.dm2.copy())

    def _scales(self) -> tuple[np.ndarray, np.ndarray, float, float]:
        mean = self.state.mean
        sd = std(self.scaler())
        if self.kind == "binary":
            return mean[:-1], sd[:-1], 0.0, 1.0
        return mean[:-1], sd[:-1], float(mean[-1]), float(sd[-1])

    def to_params(self) -> LinearParams:
        """Weights and intercept in raw feature (and target) units."""
        theta = self.state.theta
        mean, sd, y_mean, y_sd = self._scales()
        weights = y_sd * theta[:-1] / sd
        intercept = y_mean + y_sd * theta[-1] - float(weights @ mean)
        return LinearParams(self.features, weights, float(intercept))

    def load_params(self, params: LinearParams, scaler: Scaler | None = None,
                    delta: Scaler | None = None) -> None:
        """Adopt raw-unit parameters; with ``scaler``, also that scaling as the new base, and
        ``delta`` as what is already learned on top of it (default: nothing)."""
        if params.features != self.features:
            raise ValueError(f"model features {params.features} != learner's {self.features}")
        state = self.state
        if scaler is not None:
            delta = delta or Scaler.empty(len(state.mean))
            if len(scaler.mean) != len(state.mean) or len(delta.mean) != len(state.mean):
                raise ValueError("the scaler does not fit these features")
            state.counts[:] = (scaler.count, delta.count)
            state.mean[:], state.m2[:] = scaler.mean, scaler.m2
            state.dmean[:], state.dm2[:] = delta.mean, delta.m2
        mean, sd, y_mean, y_sd = self._scales()
        state.theta[:-1] = params.weights * sd / y_sd
        state.theta[-1] = (params.intercept + float(params.weights @ mean) - y_mean) / y_sd
        if scaler is not None:
            # A feature the moments say never varied: its weight acted only as part of the
            # intercept on every sample they describe (the line above put it there). Kept as a
            # standardised weight under the stand-in sd of 1, it would be multiplied by
            # 1 / (the tiny sd of its first differing value) at that value; a learner that saw
            # those samples itself holds 0 there.
            state.theta[:-1][~varied(self.scaler())[:-1]] = 0.0

    def even_steps(self) -> None:
        """Give every feature's step memory at least the intercept's (AdaGrad, RMSProp).

        Under a scaling the learner adopted (the fleet's moments), each feature has unit
        variance over the samples they describe, so a learner that had seen those samples would
        hold about the intercept's memory for every feature. A feature that never varied here
        has none: AdaGrad would take full steps on its tiny, intercept-like gradients, and the
        weight, in raw units that step / its small sd, would run away.

        >>> model = LinearModel(("a", "b"))
        >>> model.state.memory[:] = [0.0, 9.0, 4.0]
        >>> model.even_steps(); model.state.memory.tolist()
        [4.0, 9.0, 4.0]
        """
        memory = self.state.memory
        np.maximum(memory[:-1], memory[-1], out=memory[:-1])
