"""Moments of a block of rows, and the standard deviation they give.

Moments merge exactly with ``+`` and come apart with ``-`` (:class:`broker.messages.Scaler`).

>>> a = moments_of(np.array([[1.0], [2.0], [3.0]]))
>>> b = moments_of(np.array([[10.0], [20.0]]))
>>> both = moments_of(np.array([[1.0], [2.0], [3.0], [10.0], [20.0]]))
>>> m = a + b
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


def std(scaler: Scaler) -> np.ndarray:
    """Population standard deviation; 1 where it is not yet defined or is zero.

    >>> std(moments_of(np.array([[1.0, 5.0], [3.0, 5.0]]))).tolist()
    [1.0, 1.0]
    """
    if scaler.count < 2:
        return np.ones_like(scaler.mean)
    sd = np.sqrt(scaler.m2 / scaler.count)
    return np.where(sd > 1e-12, sd, 1.0)
