"""Personal parts: per-site (or per-device) models mixed with the federated one (APFL-like).

The global model stays federated as it is. Beside it a gateway keeps, for each of its sites
(``personalize="site"``) or devices (``"device"``), a personal part: its own linear model,
learned from that key's readings alone on the compiled kernel (:class:`~learners.linear.
LinearModel`, the gateway's settings), and a mixing weight ``alpha`` in [0, 1]. The personalised
prediction is ``ŷ = g + alpha (l - g)`` (``g``: the global model's, ``l``: the own model's), with
``alpha`` the least-squares weight of ``l - g`` for the error ``y - g`` over the key's past
readings, forgotten by :data:`DECAY` a reading (the best mix drifts with the seasons), clamped
to [0, 1]: 0 while the own model knows nothing better, 1 where the site differs from the
fleet. Each row is predicted before its own ``alpha`` and model learn from it (prequential).

Both models are linear in the same raw features, so a key's personalised model is
``(1 - alpha) global + alpha own``, term by term (:func:`combine`): a predictor mixes the two
messages' parameters and makes one matrix product, as before. Binary tasks are not
personalised (a mix of two logistic models is no logistic model); for them every mode acts as
``"none"`` (:func:`effective_mode`).

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

if TYPE_CHECKING:  # light: configs import the modes without the compiled kernel
    from learners.linear import LinearModel

#: ``[learner] personalize``: no personal parts, one per site, one per device.
MODES = ("none", "site", "device")

MakeModel = Callable[[], "LinearModel"]

#: How much of its past each reading keeps in the mixing weight's sums (a memory of ~100
#: readings: on the weather replay the best mix changed within weeks; measured in
#: docs/architecture.md).
DECAY = 0.99
#: Added to the sum of squares: ``alpha`` stays 0 until the own model's differences add up.
PRIOR = 1.0


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


def effective_mode(mode: str, kind: str) -> str:
    """The mode a task runs: binary tasks are not personalised.

    >>> effective_mode("site", "regression"), effective_mode("site", "binary")
    ('site', 'none')
    """
    return "none" if kind == "binary" else check_mode(mode)


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


def mix(g: np.ndarray, own: np.ndarray, y: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """Prequential mixed predictions ``g + alpha (own - g)``, each ``alpha`` from the
    forgotten sums ``[Σ d e, Σ d²]`` (``d = own - g``, ``e = y - g``) of the rows before,
    clamped to [0, 1]; ``sums`` moves on (compiled: :mod:`learners.personal_kernel`).

    >>> sums = np.zeros(2)
    >>> mix(np.zeros(3), np.ones(3), np.ones(3), sums).round(3).tolist()   # own is right
    [0.0, 0.5, 0.666]
    >>> round(alpha(sums), 3)
    0.748
    """
    from learners.personal_kernel import mix_rows  # compiled: not for the light importers

    out = np.empty(len(y))
    mix_rows(np.ascontiguousarray(g, float), np.ascontiguousarray(own, float),
             np.ascontiguousarray(y, float), sums, out, DECAY, PRIOR)
    return out


def alpha(sums: np.ndarray) -> float:
    """The mixing weight the sums give now, in [0, 1]."""
    return min(max(float(sums[0]) / (float(sums[1]) + PRIOR), 0.0), 1.0)


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

    def __init__(self, make: MakeModel) -> None:
        self.make = make
        self.models: dict[Key, LinearModel] = {}
        self.sums: dict[Key, np.ndarray] = {}  # per key: [Σ d e, Σ d²]
        self._index: dict[Key, int] = {}
        self._changed: set[Key] = set()

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
            model = self.models.get(k)
            if model is None:
                model = self.models[k] = self.make()
                self.sums[k] = np.zeros(2)
            blank = model.n_learned == 0
            own = model.predict_then_learn(X[idx], y[idx])
            if blank:
                own[0] = out[idx[0]]  # a blank model cannot guess: the global prediction stands
            out[idx] = mix(out[idx], own, y[idx], self.sums[k])
            self._changed.add(k)
        return out

    def part(self, key: Key) -> tuple[LinearParams | None, float]:
        """The own model of ``key`` in raw units (None: none learned yet) and its mixing
        weight."""
        model = self.models.get(key)
        if model is None or not model.n_learned:
            return None, 0.0
        return model.to_params(), alpha(self.sums[key])

    def samples(self, key: Key) -> int:
        model = self.models.get(key)
        return model.n_learned if model is not None else 0

    def take_changed(self) -> set[Key]:
        """The keys that learned since the last call (to publish)."""
        changed, self._changed = self._changed, set()
        return changed
