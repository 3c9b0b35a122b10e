"""Running moments that merge exactly (Chan et al.'s parallel formula).

A :class:`~broker.codec.Scaler` holds a stream's count, mean and sum of squared deviations (m2)
per column. Of [1, 2, 3] and of [10, 20]; merged, they are the moments of all five:

>>> a = Scaler(3, np.array([2.0]), np.array([2.0]))
>>> b = Scaler(2, np.array([15.0]), np.array([50.0]))
>>> m = merge(a, b)
>>> m.count, m.mean.tolist(), round(float(m.m2[0]), 9)
(5, [7.2], 254.8)
"""

from __future__ import annotations

import numpy as np

from broker.codec import Scaler


def merge(a: Scaler, b: Scaler) -> Scaler:
    """The moments of both streams together."""
    n = a.count + b.count
    if n == 0:
        return Scaler.empty(len(a.mean))
    delta = b.mean - a.mean
    return Scaler(n, a.mean + delta * (b.count / n),
                  a.m2 + b.m2 + delta**2 * (a.count * b.count / n))


def subtract(total: Scaler, part: Scaler) -> Scaler:
    """The moments of what ``total`` holds beyond ``part`` (``merge`` undone).

    >>> a = Scaler(2, np.array([1.5]), np.array([0.5]))  # [1, 2]
    >>> b = Scaler(2, np.array([8.0]), np.array([2.0]))  # [7, 9]
    >>> rest = subtract(merge(a, b), a)
    >>> rest.count, rest.mean.tolist(), rest.m2.tolist()
    (2, [8.0], [2.0])
    """
    n = total.count - part.count
    if n < 0:
        raise ValueError("cannot take more samples out than there are")
    if n == 0:
        return Scaler.empty(len(total.mean))
    mean = (total.mean * total.count - part.mean * part.count) / n
    delta = mean - part.mean
    m2 = total.m2 - part.m2 - delta**2 * (part.count * n / total.count)
    return Scaler(n, mean, np.maximum(m2, 0.0))


def std(scaler: Scaler) -> np.ndarray:
    """Population standard deviation; 1 where it is not yet defined or is zero.

    >>> std(Scaler(2, np.array([2.0, 5.0]), np.array([2.0, 0.0]))).tolist()  # [1, 3], [5, 5]
    [1.0, 1.0]
    """
    if scaler.count < 2:
        return np.ones_like(scaler.mean)
    sd = np.sqrt(scaler.m2 / scaler.count)
    return np.where(sd > 1e-12, sd, 1.0)
