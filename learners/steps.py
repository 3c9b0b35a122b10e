"""The learning rate chosen online (``lr = "auto"``): shadow learners, and the fleet's choice.

A learner with ``lr = "auto"`` runs, beside its model, one shadow learner per step of a
geometric grid around the optimizer's default (:func:`grid`), on the same samples through the
same compiled kernel (:class:`StepSearch`). Each shadow keeps its prequential loss (squared
error in target units; log-loss for ``binary``). At every model the learner adopts, its shadows
continue from the learner's state (:meth:`StepSearch.branch`: weights, moments, step memory):
from then on a shadow's loss says how its step carries on from the fleet's model, which is what
the learner does with it (learning alone from scratch says something else: in a fleet whose sites
differ, a larger step re-fits the site after each merge). Updates carry the running sums
(``metrics["step_loss"]``, one per step, and ``step_n``); the aggregator adds the latest of
every learner and picks the step of the smallest sum (:func:`choose`), and says it in the
model's notes (``notes["step"]``: its ``index`` in the grid and the summed ``loss`` of each
step; the gateways of a fleet share one config, hence one grid). A learner takes the announced
step if its grid has that index (anything else is counted as ``step_refused`` and ignored);
until the first announcement it follows its own shadows' best, and until :data:`WARMUP`
samples the grid's step below the middle (:meth:`StepSearch.start`). The losses are the
learners' claims: a forged update can steer the choice, but only to another step of the grid.

>>> from learners.linear import LinearModel
>>> from learners.optim import AdaGrad
>>> search = StepSearch(grid(0.3, 3), lambda lr: LinearModel(("x",), optimizer=AdaGrad(lr)))
>>> [round(s, 3) for s in search.steps]
[0.173, 0.3, 0.52]
>>> X = np.linspace(0, 1, 1400).reshape(-1, 1); Y = 5.0 * X[:, 0]
>>> search.learn(X, Y)
>>> report = search.report(); report["step_n"]
1399.0
>>> index, sums = choose({"gw-0": report}); search.steps[index] == search.best()
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # light: the CLI parses ``lr`` here without loading numba
    from learners.linear import LinearModel

#: Shadows a learner runs, and the ratio of one step of the grid to the next.
SHADOWS = 5
RATIO = 3.0 ** 0.5

#: What ``lr`` says to choose the step online.
AUTO = "auto"

_DIVERGED = 1e300

#: Samples of loss a choice needs: before, :meth:`StepSearch.start`. The first samples' losses
#: say how fast a step starts, not how well it learns (measured on the weather stream with SGD:
#: following the early best, 0.03 then 0.017, cost federated R² 0.05).
WARMUP = 1000

#: The keys of an update's metrics this module writes.
LOSS_KEY, N_KEY = "step_loss", "step_n"


def grid(center: float, shadows: int = SHADOWS, ratio: float = RATIO) -> tuple[float, ...]:
    """``shadows`` steps, a geometric grid with ``center`` in its middle.

    >>> [round(s, 4) for s in grid(0.3)]
    [0.1, 0.1732, 0.3, 0.5196, 0.9]
    """
    if shadows < 1 or not center > 0 or not ratio > 1:
        raise ValueError("need shadows >= 1, a center > 0 and a ratio > 1")
    return tuple(float(center * ratio ** (i - (shadows - 1) / 2)) for i in range(shadows))


def parse_lr(value: float | str | None) -> float | str | None:
    """A learning rate as an option gives it: a number > 0, ``"auto"``, or None (default).

    >>> parse_lr("auto"), parse_lr("0.5"), parse_lr(None)
    ('auto', 0.5, None)
    """
    if value is None or value == AUTO:
        return value
    try:
        lr = float(value)
    except ValueError:
        raise ValueError(f"the learning rate must be a number > 0 or 'auto', not {value!r}"
                         ) from None
    if not lr > 0 or not np.isfinite(lr):
        raise ValueError(f"the learning rate must be > 0, not {value!r}")
    return lr


class StepSearch:
    """One shadow learner per step, each predicting then learning every sample."""

    def __init__(self, steps: Sequence[float], make: Callable[[float], LinearModel]) -> None:
        self.steps = tuple(steps)
        self.shadows = [make(lr) for lr in self.steps]
        self.loss = np.zeros(len(self.steps))
        self.n = 0.0

    def learn(self, X: np.ndarray, Y: np.ndarray) -> None:
        """Every shadow predicts, then learns, the block; their losses grow by its rows (a
        blank shadow's first guess is not scored, as the gateway's)."""
        skip = 1 if self.shadows[0].n_learned == 0 else 0
        binary = self.shadows[0].kind == "binary"
        for i, shadow in enumerate(self.shadows):
            p = shadow.predict_then_learn(X, Y)[skip:]
            y = Y[skip:]
            if binary:
                q = np.clip(p, 1e-15, 1 - 1e-15)
                self.loss[i] -= float(np.sum(np.where(y > 0.5, np.log(q), np.log(1 - q))))
            else:
                self.loss[i] += float(np.sum((y - p) ** 2))
        self.n += len(Y) - skip

    def start(self) -> float:
        """The step to learn with before a choice: the grid's below its middle (the
        optimizer's default). A learner's first steps are its largest (AdaGrad's memory is
        empty), and on a short stream they are much of it: the five cities' 730 days gave
        federated R² 0.8231 at 0.3 and 0.8793 at 0.17 over each city's first 200."""
        return self.steps[max(0, len(self.steps) // 2 - 1)]

    def best(self) -> float:
        """The step whose shadow has the smallest loss so far (a diverged one: infinite);
        :meth:`start` until :data:`WARMUP` samples are scored."""
        if self.n < WARMUP:
            return self.start()
        return self.steps[int(np.argmin(np.nan_to_num(self.loss, nan=np.inf)))]

    def branch(self, model: LinearModel) -> None:
        """Every shadow continues from ``model``'s whole state (weights, moments, step memory):
        as the learner would at the shadow's step. The losses so far stay."""
        for shadow in self.shadows:
            for mine, source in zip(shadow.state, model.state, strict=True):
                mine[:] = source

    def report(self) -> dict[str, float]:
        """The running sums, as an update's metrics carry them (a float per step)."""
        # a diverged shadow's infinite (or NaN) loss as the largest finite one: the wire
        # carries finite numbers only
        capped = np.nan_to_num(self.loss, nan=_DIVERGED, posinf=_DIVERGED)
        out = {f"{LOSS_KEY}_{i}": float(min(v, _DIVERGED)) for i, v in enumerate(capped)}
        out[N_KEY] = float(self.n)
        return out


def auto_search(center: float, make: Callable[[float], LinearModel]) -> StepSearch:
    """The shadows of ``lr = "auto"``: the default grid around ``center``."""
    return StepSearch(grid(center), make)


def choose(latest: Mapping[str, Mapping[str, float]]) -> tuple[int, list[float]] | None:
    """The index of the step with the least loss summed over every learner's latest report,
    and the sums (learners that report no steps, or another number of them than the first,
    are left out); None: reports of fewer than :data:`WARMUP` samples in all.

    >>> choose({"a": {"step_loss_0": 4.0, "step_loss_1": 1.0, "step_n": 900.0},
    ...         "b": {"step_loss_0": 1.0, "step_loss_1": 3.0, "step_n": 900.0}})
    (1, [5.0, 4.0])
    """
    sums: np.ndarray | None = None
    n = 0.0
    for metrics in latest.values():
        losses = losses_of(metrics)
        if losses is None or (sums is not None and len(losses) != len(sums)):
            continue
        sums = losses if sums is None else sums + losses
        n += metrics[N_KEY]
    if sums is None or n < WARMUP:
        return None
    return int(np.argmin(np.nan_to_num(sums, nan=np.inf))), sums.tolist()


def losses_of(metrics: Mapping[str, float]) -> np.ndarray | None:
    """The step losses an update's metrics carry, in grid order; None if none (or a gap)."""
    losses = []
    while (v := metrics.get(f"{LOSS_KEY}_{len(losses)}")) is not None:
        losses.append(max(float(v), 0.0))
    return np.array(losses) if losses and metrics.get(N_KEY, 0.0) > 0 else None


def announced(notes: Mapping[str, object]) -> int | None:
    """The step index a model's notes announce, if they announce one.

    >>> announced({"step": {"index": 2, "loss": [3.0, 2.0, 1.0]}}), announced({})
    (2, None)
    """
    step = notes.get("step")
    index = step.get("index") if isinstance(step, dict) else None
    return index if isinstance(index, int) and not isinstance(index, bool) else None
