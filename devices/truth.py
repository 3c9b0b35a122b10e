"""The hidden ground truth of a simulated fleet: the target is linear in the other channels.

>>> truth = GroundTruth.from_seed(7)
>>> truth.features
('temperature', 'humidity', 'pressure')
>>> truth.target
'power'
>>> abs(truth.value({"temperature": 20.0, "humidity": 50.0, "pressure": 1013.0})) > 0
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Each feature channel: (typical level, spread between devices, within-device swing).
CHANNELS: dict[str, tuple[float, float, float]] = {
    "temperature": (20.0, 4.0, 5.0),
    "humidity": (50.0, 10.0, 12.0),
    "pressure": (1013.0, 6.0, 8.0),
}
TARGET = "power"
#: The binary channel of a fleet simulated with a share of positives: 1 when the (noisy)
#: target is above the level that share of the fleet's readings exceed.
EVENT = "event"


@dataclass(frozen=True)
class GroundTruth:
    """``target = intercept + sum(weights[f] * channel[f]) + noise``."""

    weights: dict[str, float]
    intercept: float
    noise_sd: float
    target: str = TARGET

    @classmethod
    def from_seed(cls, seed: int, noise_sd: float = 0.5) -> GroundTruth:
        """Weights drawn so that each channel moves the target by a similar amount."""
        rng = np.random.default_rng([seed, 0x7275])
        weights = {}
        for name, (_, between, within) in CHANNELS.items():
            magnitude = rng.uniform(0.3, 1.0) * 4.0 / np.hypot(between, within)
            weights[name] = float(round(magnitude * rng.choice([-1.0, 1.0]), 4))
        return cls(weights=weights, intercept=float(round(rng.uniform(-5.0, 5.0), 3)),
                   noise_sd=noise_sd)

    def drifted(self, seed: int) -> GroundTruth:
        """Another truth over the same channels: what the fleet drifts to.

        >>> t = GroundTruth.from_seed(1)
        >>> t.drifted(1).features == t.features and t.drifted(1) != t
        True
        """
        other = GroundTruth.from_seed(seed + 0x5EED, self.noise_sd)
        return GroundTruth(other.weights, other.intercept, self.noise_sd, self.target)

    def for_site(self, site: int, heterogeneity: float, seed: int = 0) -> GroundTruth:
        """Site ``site``'s own truth: these weights plus an offset of relative size
        ``heterogeneity`` (its L2 norm is that fraction of the weights'), and the intercept
        moved by as much, in a random direction drawn from (seed, site). 0: this truth.

        >>> t = GroundTruth({"a": 3.0, "b": 4.0}, 1.0, 0.1)
        >>> s = t.for_site(1, 0.2)
        >>> round(weight_error(s.weight_vector(("a", "b")), t, ("a", "b")), 6)
        0.2
        >>> t.for_site(1, 0) == t
        True
        """
        if not heterogeneity:
            return self
        rng = np.random.default_rng([seed, site, 0x517E])
        w = np.array(list(self.weights.values()))
        step = rng.normal(0.0, 1.0, len(w))
        step *= heterogeneity * np.linalg.norm(w) / np.linalg.norm(step)
        moved = float(heterogeneity * 4.0 * rng.choice([-1.0, 1.0]))  # a channel moves y by ~4
        return GroundTruth(dict(zip(self.weights, (w + step).tolist(), strict=True)),
                           self.intercept + moved, self.noise_sd, self.target)

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.weights)

    def value(self, channels: dict[str, float]) -> float:
        """The noise-free target for the given channel values."""
        return self.intercept + sum(w * channels[f] for f, w in self.weights.items())

    def weight_vector(self, features: tuple[str, ...]) -> np.ndarray:
        return np.array([self.weights[f] for f in features])


def weight_error(weights: np.ndarray, truth: GroundTruth, features: tuple[str, ...]) -> float:
    """Relative L2 distance of learned weights from the true ones.

    >>> t = GroundTruth({"a": 2.0, "b": 0.0}, 0.0, 0.1)
    >>> weight_error(np.array([2.0, 0.2]), t, ("a", "b"))
    0.1
    """
    true = truth.weight_vector(features)
    return float(np.linalg.norm(np.asarray(weights) - true) / np.linalg.norm(true))


def event_level(means: np.ndarray, sd: float, share: float) -> float:
    """The level a target exceeds with probability ``share``, over devices whose targets are
    normal with ``means`` and a common ``sd`` (a mixture, solved by bisection).

    >>> round(event_level(np.array([0.0]), 1.0, 0.05), 3)   # the normal's 95th percentile
    1.645
    """
    if not 0.0 < share < 1.0:
        raise ValueError("the share of positives must be in (0, 1)")
    erfc = np.vectorize(math.erfc)
    lo, hi = float(means.min()) - 40.0 * sd, float(means.max()) + 40.0 * sd
    for _ in range(100):
        mid = (lo + hi) / 2.0
        above = float(np.mean(erfc((mid - means) / (sd * math.sqrt(2.0))) / 2.0))
        lo, hi = (mid, hi) if above > share else (lo, mid)
    return (lo + hi) / 2.0
