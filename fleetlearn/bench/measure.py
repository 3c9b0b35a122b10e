"""What every benchmark measures with: best-of rates, RSS from /proc, percentiles and a slope
fit. A leaf module: it imports nothing of fleetlearn, so every scenario and the node processes can
use it without an import circle."""

from __future__ import annotations

import os
import time
from collections.abc import Callable


def best_rate(run: Callable[[], int], repeats: int) -> float:
    """Items per second of the fastest of ``repeats`` runs (the least disturbed by neighbours).

    >>> best_rate(lambda: 10, 2) > 0
    True
    """
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        n = run()
        best = max(best, n / (time.perf_counter() - start))
    return best


def rss_mib(pid: int | None = None) -> float:
    """Resident set size (VmRSS) of a process, in MiB, from /proc/<pid>/status.

    >>> rss_mib() > 1
    True
    """
    with open(f"/proc/{pid or os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise OSError(f"no VmRSS for pid {pid}")


def cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system) a process has used, from /proc/<pid>/stat (clock ticks).

    >>> cpu_s() > 0
    True
    """
    with open(f"/proc/{pid or os.getpid()}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between the closest ranks.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    >>> percentile([5.0], 99), percentile([1.0, 2.0, 3.0, 4.0, 5.0], 100)
    (5.0, 5.0)
    """
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs``.

    >>> slope([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0])
    2.0
    >>> slope([0.0, 1.0, 2.0], [4.0, 4.0, 4.0])
    0.0
    """
    n = len(xs)
    if n < 2 or n != len(ys):
        raise ValueError("need two or more (x, y) pairs")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("all x are equal")
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
