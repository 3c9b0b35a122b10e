"""Class imbalance in binary tasks: class weights, and a decision threshold tuned online.

**Class weights** (``class_weight``): ``"none"``, ``"balanced"`` or given as ``"0:w0,1:w1"``
(the TOML table ``{0 = w0, 1 = w1}`` becomes that). Each sample's log-loss gradient is
multiplied by its class's weight in the compiled kernel (:mod:`learners.sgd_kernel`).
Balanced weights are sklearn's n / (2 n_class), with the class counts read from the running
mean of the 0/1 target (the share of 1s) that every learner keeps and the fleet merges exactly
with the rest of the scaler's moments: no new state travels. Both counts start at
:data:`learners.sgd_kernel.BALANCE_PRIOR` (100) samples of each class, so the first rare
samples are not given weights of hundreds.

**Threshold** (``threshold``): a probability (0.5 by default, river's), or ``"auto"``: the
threshold that maximises balanced accuracy over every prediction scored so far, chosen before
each block is scored (prequential: a block never tunes its own threshold). The predictions are
counted per class on a fixed grid of 161 thresholds, evenly spaced in log-odds from -8 to 8
(probabilities 0.0003 to 0.9997), so the tuner costs a few numpy calls a block and its counts
add up across gateways.

>>> parse_class_weight("balanced"), parse_class_weight("0:1,1:19")
(ClassWeight(balanced=True, w0=1.0, w1=1.0), ClassWeight(balanced=False, w0=1.0, w1=19.0))
>>> tuner = ThresholdTuner()
>>> tuner.threshold   # nothing seen: 0.5
0.5
>>> tuner.update(np.array([0, 0, 0, 1.0]), np.array([0.01, 0.02, 0.1, 0.2]))
>>> 0.1 < tuner.threshold <= 0.2   # between the last 0 and the 1
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

#: ``class_weight`` values that are words.
CLASS_WEIGHT_WORDS = ("none", "balanced")

#: The grid the tuner chooses from: probabilities evenly spaced in log-odds.
GRID = 1.0 / (1.0 + np.exp(-np.linspace(-8.0, 8.0, 161)))


class ClassWeight(NamedTuple):
    """The kernel's class-weight settings (:class:`learners.sgd_kernel.SGDSettings`)."""

    balanced: bool = False
    w0: float = 1.0
    w1: float = 1.0


def parse_class_weight(value: Any) -> ClassWeight:
    """``"none"``, ``"balanced"``, ``"0:w0,1:w1"`` or a mapping {0: w0, 1: w1} (keys may be
    strings); weights must be > 0.

    >>> parse_class_weight({"0": 1, "1": 3})
    ClassWeight(balanced=False, w0=1.0, w1=3.0)
    >>> parse_class_weight("0:1")
    Traceback (most recent call last):
    ...
    ValueError: class weight must be 'none', 'balanced' or '0:w0,1:w1' (weights > 0), not '0:1'
    """
    if value is None or value == "none":
        return ClassWeight()
    if value == "balanced":
        return ClassWeight(balanced=True)
    problem = ValueError(f"class weight must be 'none', 'balanced' or '0:w0,1:w1' "
                         f"(weights > 0), not {value!r}")
    try:
        if isinstance(value, str):
            value = dict(part.split(":") for part in value.split(","))
        weights = {int(k): float(v) for k, v in dict(value).items()}
    except (TypeError, ValueError):
        raise problem from None
    if sorted(weights) != [0, 1] or not all(w > 0 for w in weights.values()):
        raise problem
    return ClassWeight(False, weights[0], weights[1])


def parse_threshold(value: Any) -> float | None:
    """A probability in (0, 1), or None for ``"auto"``.

    >>> parse_threshold("0.3"), parse_threshold("auto")
    (0.3, None)
    """
    if value == "auto":
        return None
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = float("nan")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be 'auto' or a probability in (0, 1), not {value!r}")
    return threshold


class ThresholdTuner:
    """The balanced-accuracy-best threshold of the grid over everything :meth:`update` saw;
    0.5 until both classes were seen. Ties go to the threshold nearest 0.5."""

    def __init__(self) -> None:
        #: per grid threshold: how many 0s (row 0) and 1s (row 1) were scored >= it
        self.at_or_above = np.zeros((2, len(GRID)), np.int64)
        self.totals = np.zeros(2, np.int64)
        self.threshold = 0.5

    def update(self, y: np.ndarray, p: np.ndarray) -> None:
        """Count a block of targets (0/1) and probabilities, then choose again."""
        ones = np.asarray(y) != 0
        p = np.asarray(p, dtype=np.float64)
        for c, chosen in enumerate((p[~ones], p[ones])):
            # how many of the class are >= each grid threshold
            below = np.searchsorted(np.sort(chosen), GRID, side="left")
            self.at_or_above[c] += len(chosen) - below
            self.totals[c] += len(chosen)
        self.threshold = self._best()

    def merge(self, other: ThresholdTuner) -> None:
        """Add another tuner's counts (another gateway's), then choose again."""
        self.at_or_above += other.at_or_above
        self.totals += other.totals
        self.threshold = self._best()

    def _best(self) -> float:
        n0, n1 = self.totals
        if not n0 or not n1:
            return 0.5
        tnr = 1.0 - self.at_or_above[0] / n0
        tpr = self.at_or_above[1] / n1
        score = tnr + tpr
        best = np.flatnonzero(score >= score.max() - 1e-12)
        return float(GRID[best[np.argmin(np.abs(GRID[best] - 0.5))]])


def fleet_threshold(latest: Mapping[str, Mapping[str, float]]) -> float | None:
    """The fleet's decision threshold, as a binary model's notes announce it: the median of
    the thresholds the learners' latest updates report (``threshold``: tuned or given), one
    vote a learner; None if none reports one. Each learner's is its own balanced-accuracy
    best. One vote each, not weighted by a count the update claims: a forged report could
    claim any count, and with one vote a minority of forged or odd reports cannot move the
    median past the others'.

    >>> fleet_threshold({"a": {"threshold": 0.2}, "b": {"threshold": 0.9},
    ...                  "c": {"threshold": 0.3}})
    0.3
    >>> fleet_threshold({"a": {"threshold": 0.2}, "b": {"threshold": 0.3}})
    0.25
    >>> fleet_threshold({"a": {"n": 10.0}, "b": {"threshold": float("nan")}}) is None
    True
    """
    votes = [float(m["threshold"]) for m in latest.values()
             if 0.0 < m.get("threshold", 0.0) < 1.0]
    return float(np.median(votes)) if votes else None


def decision_threshold(notes: Mapping[str, Any]) -> float:
    """The threshold a binary model's probability is decided at: its notes' (the fleet's),
    else 0.5 (river's).

    >>> decision_threshold({"threshold": 0.25}), decision_threshold({"threshold": "x"})
    (0.25, 0.5)
    """
    value = notes.get("threshold")
    ok = isinstance(value, float | int) and not isinstance(value, bool) and 0.0 < value < 1.0
    return float(value) if ok else 0.5


def online_thresholds(y: np.ndarray, p: np.ndarray, block: int = 200) -> np.ndarray:
    """Each prediction's threshold, tuned on the blocks before its own (``block`` samples).

    >>> t = online_thresholds(np.array([0.0, 1.0] * 200), np.array([0.2, 0.3] * 200))
    >>> float(t[0]), bool(0.2 < t[-1] <= 0.3)
    (0.5, True)
    """
    tuner = ThresholdTuner()
    out = np.empty(len(y))
    for start in range(0, len(y), block):
        out[start:start + block] = tuner.threshold
        tuner.update(y[start:start + block], p[start:start + block])
    return out


def row_class_weights(model: Any, y: np.ndarray) -> np.ndarray:
    """The class weight the binary ``model`` (a :class:`~learners.linear.LinearModel`) gives
    each row of ``y`` as it learns them next (given, or balanced by the running share of 1s:
    ``learners.sgd_kernel._class_weight``).

    >>> from learners.linear import LinearModel
    >>> model = LinearModel(("a",), "binary", class_weight=ClassWeight(balanced=True))
    >>> row_class_weights(model, np.array([1.0, 0.0])).round(3).tolist()
    [0.995, 1.0]
    """
    from learners.sgd_kernel import BALANCE_PRIOR

    s, state = model.settings, model.state
    ones = y != 0.0
    if not s.balanced:
        return np.where(ones, s.w1, s.w0)
    count = state.counts[0] + np.arange(1, len(y) + 1)  # each row counted, as it is learned
    n_ones = state.mean[-1] * state.counts[0] + np.cumsum(ones)
    n_class = np.where(ones, n_ones, count - n_ones)
    return (count + 2.0 * BALANCE_PRIOR) / (2.0 * (n_class + BALANCE_PRIOR))
