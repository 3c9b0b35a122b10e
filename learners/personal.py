"""Personal parts: per-site (or per-device) models mixed with the federated one (APFL-like).

The global model stays federated as it is. Beside it a gateway keeps, for each of its sites
(``personalize="site"``) or devices (``"device"``), a personal part: two models of its own,
learned from that key's readings alone on the compiled kernel (:class:`~learners.linear.
LinearModel`, the gateway's settings): ``own`` at the gateway's step and ``slow`` at
:data:`SLOW` of it (steadier: a different expert, not a copy), and mixing weights. The
personalised prediction is ``ŷ = g + a1 (own - g) + a2 (slow - g)`` (``g``: the global
model's), with ``(a1, a2)`` on the simplex (``a1, a2 >= 0``, ``a1 + a2 <= 1``) of least squared
error over the key's past readings, forgotten by :data:`DECAY` a reading (the best mix drifts
with the seasons): the global model alone, either own model alone, or any mix of them, by the
evidence. Before any evidence the key's own model serves if it had agreed with the global one
(until a gateway's first global model, its model *is* its site's own learning: the first global
model must earn its weight), the global one otherwise (a newcomer meets a mature fleet). Each
row is predicted before its weights and models learn from it (prequential; compiled:
:mod:`learners.personal_kernel`). Binary tasks mix the three in log-odds (a logistic model
again), the weights by an online IRLS step on the class-weighted log-loss.

All three are linear in the same raw features, so a key's personalised model is
``(1 - alpha) global + alpha part`` with ``alpha = a1 + a2`` and ``part = (a1 own + a2 slow) /
alpha``, term by term (:func:`combine`): a predictor mixes the two messages' parameters and
makes one matrix product, as before. With ``lr = "auto"`` the own models' step is chosen by a
search of their own (:class:`~learners.steps.StepSearch` over the gateway's readings, its
shadows learning alone from scratch, as an own model does: the fleet's step says how to carry
on from a merged model, which own models never adopt).

>>> from learners.linear import LinearModel
>>> rng = np.random.default_rng(0)
>>> parts = PersonalParts(lambda: LinearModel(("a",)))
>>> X = rng.normal(0.0, 1.0, (4000, 1))
>>> keys = np.where(np.arange(4000) % 2 == 0, "s0", "s1").tolist()
>>> y = np.where(np.array(keys) == "s0", 1.0, 3.0) * X[:, 0]   # sites with different slopes
>>> global_pred = 2.0 * X[:, 0]                                 # the fleet's average
>>> p = parts.learn(keys, X, y, global_pred)
>>> tail = slice(3000, None)
>>> bool(np.abs(p[tail] - y[tail]).mean() < 0.05 < np.abs(global_pred[tail] - y[tail]).mean())
True
>>> glob = LinearParams(("a",), np.array([2.0]), 0.0)
>>> [round(float(combine(glob, *parts.part(k)).weights[0]), 1) for k in ("s0", "s1")]
[1.0, 3.0]
>>> sorted(parts.take_changed())
['s0', 's1']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from broker.messages import LinearParams
from learners.imbalance import row_class_weights

if TYPE_CHECKING:  # light: configs import the modes without the compiled kernel
    from learners.linear import LinearModel
    from learners.steps import StepSearch

#: ``[learner] personalize``: no personal parts, one per site, one per device.
MODES = ("none", "site", "device")

MakeModel = Callable[[], "LinearModel"]

#: How much of its past each reading keeps in the mixing weights' sums (a memory of ~100
#: readings: on the weather replay the best mix changed within weeks; measured in
#: docs/architecture.md).
DECAY = 0.99
#: The slow own model's step, as a share of the gateway's (measured on both weather data sets
#: and the simulated fleets: every share from 0.4 to 0.7 put every station at its best baseline
#: or above, 1/3 and 1/4 left one city below, 1/10 lost; docs/architecture.md).
SLOW = 0.5


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`.

    >>> check_mode("site")
    'site'
    >>> check_mode("city")
    Traceback (most recent call last):
    ...
    ValueError: personalize must be one of none, site, device, not 'city'
    """
    if mode not in MODES:
        raise ValueError(f"personalize must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def key_of(mode: str, site: str, device: str) -> tuple[str, str | None] | None:
    """The personal part a reading of ``device`` on ``site`` belongs to: ``(site, None)``,
    ``(site, device)``, or None (no personal part).

    >>> key_of("site", "s0", "d1"), key_of("device", "s0", "d1"), key_of("none", "s0", "d1")
    (('s0', None), ('s0', 'd1'), None)
    """
    if mode == "site":
        return (site, None)
    if mode == "device":
        return (site, device)
    return None


def combine(global_params: LinearParams, part: LinearParams | None = None,
            alpha: float = 0.0) -> LinearParams:
    """The personalised model: ``(1 - alpha) global + alpha part``, term by term (raw units).

    >>> g = LinearParams(("a", "b"), np.array([1.0, 2.0]), 0.5)
    >>> c = combine(g, LinearParams(("a", "b"), np.array([3.0, 0.0]), 1.5), 0.5)
    >>> c.weights.tolist(), c.intercept
    ([2.0, 1.0], 1.0)
    >>> combine(g, None) is g
    True
    """
    if part is None or not alpha:
        return global_params
    if part.features != global_params.features:
        raise ValueError(f"personal part features {part.features} != "
                         f"the model's {global_params.features}")
    a = float(alpha)
    return LinearParams(global_params.features,
                        (1.0 - a) * global_params.weights + a * part.weights,
                        (1.0 - a) * global_params.intercept + a * part.intercept)


def mix(g: np.ndarray, own: np.ndarray, slow: np.ndarray, y: np.ndarray, state: np.ndarray,
        skip: int = 0, class_weight: np.ndarray | None = None) -> np.ndarray:
    """Prequential mixed predictions ``g + a1 (own - g) + a2 (slow - g)``, each row's weights
    from the forgotten sums of the rows before (:func:`weights`); ``state`` moves on; the first
    ``skip`` rows (a blank own model's) keep ``g`` and teach nothing (compiled:
    :mod:`learners.personal_kernel`). With ``class_weight`` (a binary task's, per row) the
    predictions are probabilities, mixed in log-odds (``mix_rows_logistic``).

    >>> from learners.personal_kernel import STATE
    >>> state = np.zeros(STATE)
    >>> g, y = np.zeros(4), np.ones(4)
    >>> mix(g, np.full(4, 0.5), np.ones(4), y, state).tolist()  # the slow one is right
    [0.0, 1.0, 1.0, 1.0]
    >>> weights(state)
    (0.0, 1.0)
    """
    from learners import personal_kernel  # compiled: not for the light importers

    out = np.empty(len(y))
    rows = [np.ascontiguousarray(v, float) for v in (g, own, slow, y)]
    if class_weight is None:
        personal_kernel.mix_rows(*rows, state, out, DECAY, skip)
    else:
        personal_kernel.mix_rows_logistic(*rows, np.ascontiguousarray(class_weight, float),
                                          state, out, DECAY, skip)
    return out


def weights(state: np.ndarray) -> tuple[float, float]:
    """The weights ``(a1, a2)`` of the own and the slow model the state gives now."""
    from learners.personal_kernel import simplex_weights

    a1, a2 = simplex_weights(state)
    return float(a1), float(a2)


def blend(own: LinearParams, slow: LinearParams, a1: float, a2: float
          ) -> tuple[LinearParams, float]:
    """The part and ``alpha`` that :func:`combine` turns into ``g + a1 (own - g) + a2 (slow -
    g)``: ``alpha = a1 + a2``, the part ``(a1 own + a2 slow) / alpha`` (the own model when
    ``alpha`` is 0).

    >>> own, slow = (LinearParams(("a",), np.array([w]), 0.0) for w in (1.0, 3.0))
    >>> part, alpha = blend(own, slow, 0.25, 0.25)
    >>> part.weights.tolist(), alpha
    ([2.0], 0.5)
    """
    alpha = a1 + a2
    if alpha <= 0.0:
        return own, 0.0
    return LinearParams(own.features, (a1 * own.weights + a2 * slow.weights) / alpha,
                        (a1 * own.intercept + a2 * slow.intercept) / alpha), min(alpha, 1.0)


def bounded(part: LinearParams, features: tuple[str, ...], max_magnitude: float
            ) -> tuple[str, str] | None:
    """Why a personal part is refused (reason, detail), or None: the same bounds a model
    passes (:class:`~learners.model_admission.ModelBounds`: the task's features, finite
    numbers no larger than ``max_magnitude``).

    >>> ok = LinearParams(("a",), np.array([1.0]), 0.0)
    >>> bounded(ok, ("a",), 1e9), bounded(ok, ("b",), 1e9)[0]
    (None, 'personal_task')
    >>> bounded(LinearParams(("a",), np.array([np.inf]), 0.0), ("a",), 1e9)[0]
    'personal_magnitude'
    """
    if part.features != features:
        return "personal_task", f"features {part.features}, the task's {features}"
    numbers = np.append(part.weights, part.intercept)
    if not np.isfinite(numbers).all() or float(np.abs(numbers).max()) > max_magnitude:
        return "personal_magnitude", f"a number beyond {max_magnitude:g} (or not finite)"
    return None


Key = tuple[str, str | None] | str


class PersonalParts:
    """The personal parts of one gateway, by key; never merged, never sent as updates."""

    def __init__(self, make: MakeModel, steps: StepSearch | None = None) -> None:
        self.make = make
        self.steps = steps  # lr = "auto": the own models' step, chosen alone
        self.lr: float | None = steps.best() if steps is not None else None
        self.models: dict[Key, LinearModel] = {}
        self.slow: dict[Key, LinearModel] = {}  # per key: the own model's slow twin
        self.sums: dict[Key, np.ndarray] = {}  # per key: the mixing state (personal_kernel)
        self._index: dict[Key, int] = {}
        self._changed: set[Key] = set()

    def _new(self, key: Key) -> LinearModel:
        from learners.personal_kernel import STATE

        model = self.models[key] = self.make()
        if self.lr is not None:
            model.set_lr(self.lr)
        slow = self.slow[key] = self.make()
        slow.set_lr(model.lr * SLOW)
        self.sums[key] = np.zeros(STATE)
        return model

    def learn(self, keys: Sequence[Key], X: np.ndarray, y: np.ndarray, base: np.ndarray
              ) -> np.ndarray:
        """The personalised predictions of rows in order (``base``: the global model's, each
        made before it learned the row); then each key's part learns its rows."""
        out = np.array(base, dtype=float)
        if not len(keys):
            return out
        index = self._index
        codes = np.fromiter((index.setdefault(k, len(index)) for k in keys), np.int64,
                            len(keys))
        order = np.argsort(codes, kind="stable")  # by key, each in arrival order
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        for idx in np.split(order, bounds):
            k = keys[int(idx[0])]
            model = self.models.get(k) or self._new(k)
            blank = int(model.n_learned == 0)
            weights_ = row_class_weights(model, y[idx]) if model.kind == "binary" else None
            own = model.predict_then_learn(X[idx], y[idx])
            slow = self.slow[k].predict_then_learn(X[idx], y[idx])
            out[idx] = mix(out[idx], own, slow, y[idx], self.sums[k], blank, weights_)
            self._changed.add(k)
        if self.steps is not None:
            self.steps.learn(X, y)
            self._set_lr(self.steps.best())
        return out

    def _set_lr(self, lr: float) -> None:
        """Every own model's step from now on (the slow twins at :data:`SLOW` of it)."""
        if lr != self.lr:
            self.lr = lr
            for key, model in self.models.items():
                model.set_lr(lr)
                self.slow[key].set_lr(lr * SLOW)

    def part(self, key: Key) -> tuple[LinearParams | None, float]:
        """The key's part in raw units (its own models blended by their weights; None: none
        learned yet) and ``alpha``, as :func:`combine` takes them."""
        model = self.models.get(key)
        if model is None or not model.n_learned:
            return None, 0.0
        return blend(model.to_params(), self.slow[key].to_params(), *weights(self.sums[key]))

    def samples(self, key: Key) -> int:
        model = self.models.get(key)
        return model.n_learned if model is not None else 0

    def take_changed(self) -> set[Key]:
        """The keys that learned since the last call (to publish)."""
        changed, self._changed = self._changed, set()
        return changed
