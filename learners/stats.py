"""The standard deviation a stream's moments give.

A :class:`~broker.messages.Scaler` holds a stream's count, mean and sum of squared deviations
(m2) per column; moments merge exactly with ``+`` and come apart with ``-``. Of [1, 2, 3] and of
[10, 20]; merged, they are the moments of all five:

>>> a = Scaler(3, np.array([2.0]), np.array([2.0]))
>>> b = Scaler(2, np.array([15.0]), np.array([50.0]))
>>> m = a + b
>>> m.count, m.mean.tolist(), round(float(m.m2[0]), 9), std(m).round(3).tolist()
(5, [7.2], 254.8, [7.139])
"""

from __future__ import annotations

import numpy as np

from broker.messages import Scaler


def std(scaler: Scaler) -> np.ndarray:
    """Population standard deviation; 1 where it is not yet defined or is zero.

    >>> std(Scaler(2, np.array([2.0, 5.0]), np.array([2.0, 0.0]))).tolist()  # [1, 3], [5, 5]
    [1.0, 1.0]
    """
    if scaler.count < 2:
        return np.ones_like(scaler.mean)
    sd = np.sqrt(scaler.m2 / scaler.count)
    return np.where(sd > 1e-12, sd, 1.0)


def varied(scaler: Scaler) -> np.ndarray:
    """Which columns the moments saw take more than one value (where :func:`std` is real).

    >>> varied(Scaler(2, np.array([2.0, 5.0]), np.array([2.0, 0.0]))).tolist()
    [True, False]
    """
    if scaler.count < 2:
        return np.zeros(len(scaler.mean), dtype=bool)
    return np.sqrt(scaler.m2 / scaler.count) > 1e-12
