"""Running mean and variance of feature vectors that merge exactly (Welford; Chan et al.).

>>> a, b, both = RunningMoments(1), RunningMoments(1), RunningMoments(1)
>>> for v in (1.0, 2.0, 3.0):
...     a.update([v]); both.update([v])
>>> for v in (10.0, 20.0):
...     b.update([v]); both.update([v])
>>> merged = a + b
>>> bool(np.allclose(merged.mean, both.mean) and np.allclose(merged.m2, both.m2))
True
"""

from __future__ import annotations

import numpy as np


class RunningMoments:
    """Count, mean and sum of squared deviations (M2) per coordinate."""

    __slots__ = ("count", "m2", "mean")

    def __init__(self, size: int) -> None:
        self.count = 0
        self.mean = np.zeros(size)
        self.m2 = np.zeros(size)

    def update(self, x) -> None:
        """Fold in one observation (Welford's step)."""
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)

    def __add__(self, other: RunningMoments) -> RunningMoments:
        """The moments of both streams together (Chan et al. parallel formula)."""
        out = RunningMoments(len(self.mean))
        n = self.count + other.count
        if n == 0:
            return out
        delta = other.mean - self.mean
        out.count = n
        out.mean = self.mean + delta * (other.count / n)
        out.m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / n)
        return out

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation; 1 where it is not yet defined or zero.

        >>> m = RunningMoments(2)
        >>> m.update(np.array([1.0, 5.0])); m.update(np.array([3.0, 5.0]))
        >>> m.std.tolist()
        [1.0, 1.0]
        """
        if self.count < 2:
            return np.ones_like(self.mean)
        sd = np.sqrt(self.m2 / self.count)
        return np.where(sd > 1e-12, sd, 1.0)
