"""The personal parts' mixing step, compiled (:func:`learners.personal.mix` is its readable
definition and calls it): per row, ``alpha`` from the forgotten sums of the rows before,
clamped to [0, 1]; the mixed prediction; then the sums move on.

>>> import numpy as np
>>> sums = np.zeros(2)
>>> out = np.empty(3)
>>> mix_rows(np.zeros(3), np.ones(3), np.ones(3), sums, out, 0.99, 1.0)
>>> out.round(3).tolist()
[0.0, 0.5, 0.666]
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def mix_rows(g, own, y, sums, out, decay, prior):  # pragma: no cover - compiled
    sxy, sxx = sums[0], sums[1]
    for i in range(len(y)):
        a = sxy / (sxx + prior)
        if a < 0.0:
            a = 0.0
        elif a > 1.0:
            a = 1.0
        d = own[i] - g[i]
        out[i] = g[i] + a * d
        e = y[i] - g[i]
        sxy = decay * sxy + d * e
        sxx = decay * sxx + d * d
    sums[0], sums[1] = sxy, sxx


def warm() -> None:
    """Compile (or load from the cache) before the first readings wait for it."""
    one = np.zeros(1)
    mix_rows(one, one, one, np.zeros(2), np.empty(1), 0.99, 1.0)
