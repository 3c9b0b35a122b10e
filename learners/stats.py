"""Running moments that merge exactly (Chan et al.'s parallel formula).

>>> a = moments_of(np.array([[1.0], [2.0], [3.0]]))
>>> b = moments_of(np.array([[10.0], [20.0]]))
>>> both = moments_of(np.array([[1.0], [2.0], [3.0], [10.0], [20.0]]))
>>> m = merge(a, b)
>>> m.count, bool(np.allclose(m.mean, both.mean) and np.allclose(m.m2, both.m2))
(5, True)
"""

from __future__ import annotations

import numpy as np

from broker.messages import Scaler


def moments_of(rows: np.ndarray) -> Scaler:
    """The moments of a block of rows, in one pass of numpy."""
    if len(rows) == 0:
        return Scaler.empty(rows.shape[1])
    mean = rows.mean(axis=0)
    return Scaler(len(rows), mean, ((rows - mean) ** 2).sum(axis=0))


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

    >>> a, b = moments_of(np.array([[1.0], [2.0]])), moments_of(np.array([[7.0], [9.0]]))
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

    >>> std(moments_of(np.array([[1.0, 5.0], [3.0, 5.0]]))).tolist()
    [1.0, 1.0]
    """
    if scaler.count < 2:
        return np.ones_like(scaler.mean)
    sd = np.sqrt(scaler.m2 / scaler.count)
    return np.where(sd > 1e-12, sd, 1.0)
