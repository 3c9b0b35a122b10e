"""What fleetlearn's messages hold: readings, linear parameters, moments, updates and models.

Plain types, no encoding: this module imports no JSON library, so domain code (the learners,
the simulator) can use them without a codec. The wire formats are :mod:`broker.reading_codec`
and :mod:`broker.model_codec`.

>>> r = Reading(device="s0-d0001", seq=7, ts=1732450000.0, values={"temperature": 21.5})
>>> r.values["temperature"]
21.5
>>> a = Scaler(2, np.array([1.5]), np.array([0.5]))     # the moments of 1, 2
>>> b = Scaler(2, np.array([8.0]), np.array([2.0]))     # the moments of 7, 9
>>> (a + b).count, (a + b).mean.tolist(), (a + b).m2.tolist()
(4, [4.75], [44.75])
>>> ((a + b) - b).mean.tolist(), ((a + b) - b).m2.tolist()
([1.5], [0.5])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: What a model predicts: a number (``regression``) or the probability of a 1 (``binary``).
KINDS = ("regression", "binary")


@dataclass(frozen=True)
class Reading:
    """One sensor reading: a device's numbered sample of named channels. ``boot`` says which
    run of the device numbered it: a device that restarts its numbers from 0 sends a larger
    boot id (0, the default, for a device that sends none).

    >>> Reading("d1", 7, 1.0, {"t": 21.5}) == Reading("d1", 7, 1.0, {"t": 21.5}, boot=0)
    True
    """

    device: str
    seq: int
    ts: float
    values: dict[str, float]
    boot: int = 0


@dataclass(frozen=True)
class LinearParams:
    """Weights and intercept of a linear model, in the raw units of the named features."""

    features: tuple[str, ...]
    weights: np.ndarray
    intercept: float

    def predict(self, values: dict[str, float]) -> float:
        """Predict from raw channel values.

        >>> p = LinearParams(("a", "b"), np.array([2.0, -1.0]), 0.5)
        >>> p.predict({"a": 1.0, "b": 3.0})
        -0.5
        """
        x = np.fromiter((values[f] for f in self.features), float, len(self.features))
        return float(x @ self.weights + self.intercept)


@dataclass(frozen=True)
class Scaler:
    """Running moments of the features then the target (Welford's count, mean and M2).

    They travel with updates (what a learner saw since its base model) and models (what the
    whole fleet saw). ``a + b`` is the exact moments of both streams together (Chan et al.'s
    parallel formula); ``total - part`` undoes it, the moments of what ``total`` holds beyond
    ``part``. Both need moments of one size (ValueError otherwise).

    >>> a = Scaler(3, np.array([2.0]), np.array([2.0]))      # the moments of 1, 2, 3
    >>> b = Scaler(2, np.array([15.0]), np.array([50.0]))    # the moments of 10, 20
    >>> both = a + b                                         # the moments of 1, 2, 3, 10, 20
    >>> both.count, both.mean.tolist(), both.m2.round(9).tolist()
    (5, [7.2], [254.8])
    >>> (both - a).count, (both - a).mean.tolist(), (both - a).m2.round(9).tolist()
    (2, [15.0], [50.0])
    >>> (a + Scaler.empty(1)).mean.tolist(), (a - a).count
    ([2.0], 0)
    >>> a - both
    Traceback (most recent call last):
    ...
    ValueError: cannot take 5 samples out of 3
    """

    count: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, size: int) -> Scaler:
        """The moments of no samples, of ``size`` columns."""
        return cls(0, np.zeros(size), np.zeros(size))

    def __add__(self, other: Scaler) -> Scaler:
        if not isinstance(other, Scaler):
            return NotImplemented
        _same_size(self, other)
        n = self.count + other.count
        if n == 0:
            return Scaler.empty(len(self.mean))
        delta = other.mean - self.mean
        return Scaler(n, self.mean + delta * (other.count / n),
                      self.m2 + other.m2 + delta**2 * (self.count * other.count / n))

    def __sub__(self, part: Scaler) -> Scaler:
        if not isinstance(part, Scaler):
            return NotImplemented
        _same_size(self, part)
        n = self.count - part.count
        if n < 0:
            raise ValueError(f"cannot take {part.count} samples out of {self.count}")
        if n == 0:
            return Scaler.empty(len(self.mean))
        mean = (self.mean * self.count - part.mean * part.count) / n
        delta = mean - part.mean
        m2 = self.m2 - part.m2 - delta**2 * (part.count * n / self.count)
        return Scaler(n, mean, np.maximum(m2, 0.0))  # rounding must not make M2 negative


def _same_size(a: Scaler, b: Scaler) -> None:
    if a.mean.shape != b.mean.shape:
        raise ValueError(f"moments of {len(a.mean)} and {len(b.mean)} columns do not combine")


@dataclass(frozen=True)
class Update:
    """A learner's parameters after ``n`` samples learned on top of model ``base_version``."""

    learner: str
    seq: int
    base_version: int
    n: int
    target: str
    params: LinearParams
    ts: float
    scaler: Scaler
    kind: str = "regression"
    metrics: dict[str, float] = field(default_factory=dict)
    drift: int = 0  # concept changes the learner detected since its previous update
    #: the zones the time features are computed in: {"default": zone, "zones": {name: zone}};
    #: empty: UTC (gateway.local_time)
    local_time: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Model:
    """A synchronized model version, as the aggregator broadcasts it."""

    version: int
    ts: float
    n: int
    contributors: tuple[str, ...]
    target: str
    params: LinearParams
    scaler: Scaler
    kind: str = "regression"
    notes: dict[str, Any] = field(default_factory=dict)
    local_time: dict[str, Any] = field(default_factory=dict)  # as Update's: empty is UTC
