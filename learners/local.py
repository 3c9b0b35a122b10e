"""A learner's side of synchronisation: what an update reports, and how a model is adopted.

Adopting a model does not throw away local work the model cannot contain. Between sending an
update and receiving the next model a learner keeps learning; the model is built from updates
sent before, so that progress is not in it. On adoption the learner takes the model and adds
that progress back (in raw units), with the moments of the same samples (``Δ`` below):

    new = model + (local - anchor)       anchor = the params at the last send or adoption
    scaler = model.scaler ⊕ Δ            Δ = moments learned since the last send

The adopted scaling is the fleet's, in which a feature may vary that never varied here: the
learner's step memory is raised to the intercept's for every feature (:meth:`LinearModel.
even_steps`), and a weight on a feature the adopted moments say never varied is folded into the
intercept (:meth:`LinearModel.load_params`). Either left alone armed a weight that ran away at
the next rare reading (tests/unit/test_adoption.py; the weather replay under load: R² 0.68).

On a fast stream, overwriting instead lost most samples (measured on the weather replay: the
federated model held 8,880 of 25,751 learned samples, prequential R² 0.79 against 0.98 for one
central learner).

>>> from broker.messages import Model
>>> local = LocalLearner(LinearModel(("x",)))
>>> X, Y = np.arange(100.0).reshape(-1, 1), 2 * np.arange(100.0)
>>> _ = local.learn(X[:50], Y[:50])
>>> sent = local.update("gw-0", seq=1, target="y", ts=0.0)
>>> sent.n, sent.base_version
(50, 0)
>>> _ = local.learn(X[50:], Y[50:])   # learned after the send: not in the next model
>>> model = Model(1, 0.0, 50, ("gw-0",), "y", sent.params, sent.scaler)
>>> local.adopt(model)
True
>>> local.base_version, local.since_base, local.learner.scaler().count
(1, 50, 100)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from broker.messages import LinearParams, Model, Scaler, Update
from learners.inclusion import MAX_SENDS, contained
from learners.linear import LinearModel
from learners.steps import StepSearch, announced


def drift_policy(model: Model) -> str | None:
    """The drift reaction a model carries in its notes, if any.

    >>> drift_policy(Model(1, 0.0, 1, (), "y", None, None, notes={"drift": {"policy": "reset"}}))
    'reset'
    """
    drift = model.notes.get("drift")
    return drift.get("policy") if isinstance(drift, dict) else None


class LocalLearner:
    """An online model plus the bookkeeping of the rounds it takes part in."""

    def __init__(self, learner: LinearModel, steps: StepSearch | None = None) -> None:
        self.learner = learner
        self.steps = steps  # lr = "auto": shadow learners (learners.steps)
        if steps is not None:
            learner.set_lr(steps.best())  # from the first sample
        self.fleet_step = False  # a model announced the fleet's step
        self.step_refused = 0  # announced steps not in our grid
        self.base_version = 0
        self.since_base = 0  # samples the next update reports (its n)
        self.since_send = 0
        self.learner_id: str | None = None  # as its updates name it
        self._anchor: LinearParams | None = None  # params at the last send or adoption
        self._delta_at_send: Scaler | None = None  # the delta moments when we last sent
        self._adopted: LinearParams | None = None  # the params of the model last adopted
        self._sends: dict[int, tuple[LinearParams, Scaler]] = {}  # since then, by seq

    def learn(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Predict then learn a block of rows; the predictions made before learning each."""
        predictions = self.learner.predict_then_learn(X, Y)
        if self.steps is not None:
            self.steps.learn(X, Y)
            if not self.fleet_step:  # until the fleet chooses, our own shadows' best
                self.learner.set_lr(self.steps.best())
        self.since_base += len(Y)
        self.since_send += len(Y)
        return predictions

    def update(self, learner_id: str, seq: int, target: str, ts: float,
               metrics: dict[str, float] | None = None, drift: int = 0,
               local_time: dict[str, Any] | None = None) -> Update:
        """The update to send now: everything learned on top of the base model."""
        params = self.learner.to_params()
        delta = self.learner.delta()
        self.learner_id = learner_id
        self._anchor, self._delta_at_send = params, delta
        self._sends[seq] = (params, delta)
        if len(self._sends) > MAX_SENDS:
            del self._sends[next(iter(self._sends))]
        self.since_send = 0
        return Update(learner=learner_id, seq=seq, base_version=self.base_version,
                      n=self.since_base, target=target, params=params, ts=ts, scaler=delta,
                      kind=self.learner.kind, drift=drift, local_time=local_time or {},
                      metrics={**(metrics or {}), **(self.steps.report() if self.steps else {})})

    def adopt(self, model: Model, replace: bool = False) -> bool:
        """Take a newer model (any, with ``replace``: the caller judged it) and carry on from it
        with the progress it cannot contain."""
        if model.version <= self.base_version and not replace:
            return False
        learner = self.learner
        current, delta = learner.to_params(), learner.delta()
        self._anchor, self._delta_at_send = contained(
            model, self.learner_id, self.base_version, self._sends, self._adopted,
            (self._anchor, self._delta_at_send))
        unsent = delta if self._delta_at_send is None else delta - self._delta_at_send
        params = model.params
        policy = drift_policy(model)
        if policy == "reset":
            learner.forget_steps()  # the concept changed: steps as large as at the start
        if self._anchor is not None and policy not in ("rescale", "reset"):
            params = LinearParams(
                params.features, params.weights + current.weights - self._anchor.weights,
                params.intercept + current.intercept - self._anchor.intercept)
        # else: a learner that never synced has no common base to measure progress from, or
        # the fleet reacts to a drift (what it learned since its send was learned under the
        # old scaling); it takes the model as it is (its samples still count in the moments)
        learner.load_params(params, model.scaler + unsent, unsent)
        learner.even_steps()  # the fleet's scaling: its features vary more than ours did
        self._take_step(model)
        if self.steps is not None:
            self.steps.branch(learner)  # the shadows carry on from what we carry on from
        self._anchor, self._delta_at_send = model.params, None
        self._adopted = model.params
        self._sends.clear()
        self.base_version = model.version
        self.since_base = unsent.count
        self.since_send = unsent.count
        return True

    def _take_step(self, model: Model) -> None:
        """The step the fleet chose, if the model announces one (``lr = "auto"``)."""
        index = announced(model.notes)
        if self.steps is None or index is None:
            return
        if 0 <= index < len(self.steps.steps):
            self.learner.set_lr(self.steps.steps[index])
            self.fleet_step = True
        else:
            self.step_refused += 1
