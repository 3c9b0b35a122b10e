"""The sorted windows behind the gateway's outlier filter (a Hampel filter), compiled.

Per device and channel the state keeps the last ``window`` raw values twice: in arrival order
(``hist``, a ring) and sorted (``ordered``). These helpers keep ``ordered[d, c]`` sorted as a
value comes in or replaces the oldest, and read the median and the MAD off it without sorting.
They are inlined into :func:`gateway.judge_kernel.judge_rows`.

numba's cache follows only the file of the function it compiled, by a hash of its content
(numba 0.68; touching it is not enough): after editing this module, delete
``gateway/__pycache__/judge_kernel.*.nb[ci]`` so the judge is rebuilt.

>>> import numpy as np
>>> ordered = np.zeros((1, 1, 4))
>>> for n, v in enumerate([5.0, 1.0, 3.0]):
...     insert_sorted(ordered, 0, 0, n, v)
>>> ordered[0, 0, :3].tolist()
[1.0, 3.0, 5.0]
>>> median_mad(ordered, 0, 0, 3)  # median 3, MAD 2, scaled to a standard deviation
(3.0, 2.9652)
>>> replace_sorted(ordered, 0, 0, 3, 5.0, 0.0); ordered[0, 0, :3].tolist()
[0.0, 1.0, 3.0]
"""

from __future__ import annotations

from numba import njit

#: The MAD of a normal sample times this estimates its standard deviation.
MAD_TO_SD = 1.4826


@njit(cache=True, inline="always")
def _middle(ordered, d, c, n):
    half = n // 2
    return ordered[d, c, half] if n % 2 else 0.5 * (ordered[d, c, half - 1] + ordered[d, c, half])


@njit(cache=True, inline="always")
def median_mad(ordered, d, c, n):
    """Median and MAD (scaled to a standard deviation) of the first n values of
    ``ordered[d, c]`` (kept sorted): the deviations are read in order from the median
    outwards, no sort."""
    median = _middle(ordered, d, c, n)
    lo, hi = 0, n
    while lo < hi:  # the first value >= the median
        mid = (lo + hi) // 2
        if ordered[d, c, mid] < median:
            lo = mid + 1
        else:
            hi = mid
    left, right = lo - 1, lo
    half = n // 2
    previous = current = 0.0
    for k in range(half + 1):
        if right < n and (left < 0 or
                          ordered[d, c, right] - median <= median - ordered[d, c, left]):
            current = ordered[d, c, right] - median
            right += 1
        else:
            current = median - ordered[d, c, left]
            left -= 1
        if k == half - 1:
            previous = current
    return median, MAD_TO_SD * (current if n % 2 else 0.5 * (previous + current))


@njit(cache=True, inline="always")
def insert_sorted(ordered, d, c, n, value):
    """Put ``value`` into the sorted first n values of ``ordered[d, c]`` (room for n + 1)."""
    k = n
    while k > 0 and ordered[d, c, k - 1] > value:
        ordered[d, c, k] = ordered[d, c, k - 1]
        k -= 1
    ordered[d, c, k] = value


@njit(cache=True, inline="always")
def replace_sorted(ordered, d, c, n, old, value):
    """Swap one ``old`` in the sorted first n values of ``ordered[d, c]`` for ``value``.

    Positions are counted, not searched (no unpredictable branches), then the values between
    move by one."""
    row = ordered[d, c]
    at = 0  # where old is
    to = 0  # where value goes, among the others
    for k in range(n):
        v = row[k]
        at += v < old
        to += v < value
    to -= old < value
    if to >= at:
        for k in range(at, to):
            row[k] = row[k + 1]
    else:
        for k in range(at, to, -1):
            row[k] = row[k - 1]
    row[to] = value
