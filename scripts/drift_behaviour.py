"""What grouping errors changes in DriftMonitor: false alarms on stationary streams, and how
soon (and how often) a rise is found, fed error by error (``group=1``, the detectors as river
ships them) and in groups of 32. Run from the repository: ``python scripts/drift_behaviour.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learners.drift import GROUP, DriftMonitor


def stationary(detector: str, group: int, seeds: int = 5, n: int = 100_000) -> list[int]:
    found = []
    for seed in range(seeds):
        errors = np.abs(np.random.default_rng(seed).normal(0.0, 0.1, n))
        monitor = DriftMonitor(detector, group=group)
        for i in range(0, n, 200):
            monitor.update_many(errors[i:i + 200])
        found.append(monitor.detections)
    return found


def rise(detector: str, group: int, factor: float, runs: int = 20) -> str:
    delays, counts = [], []
    for seed in range(runs):
        rng = np.random.default_rng(100 + seed)
        monitor = DriftMonitor(detector, group=group)
        monitor.update_many(np.abs(rng.normal(0.0, 0.1, 5000)))
        after = np.abs(rng.normal(0.0, 0.1 * factor, 20_000))
        first = None
        for i in range(len(after)):  # one error a call: the delay to the error
            if monitor.update_many(after[i:i + 1]) and first is None:
                first = i + 1
        delays.append(first)
        counts.append(monitor.detections)
    found = [d for d in delays if d is not None]
    median = f"{np.median(found):.0f}" if found else "-"
    return (f"x{factor:g}: found in {len(found)}/{runs}, median delay {median}, "
            f"detections per run {sorted(set(counts))}")


if __name__ == "__main__":
    for detector in ("adwin", "page-hinkley"):
        for group in (1, GROUP):
            print(f"{detector}, group {group}: stationary 100,000 errors, detections per seed "
                  f"{stationary(detector, group)}")
            for factor in (2.0, 3.0, 4.0, 10.0):
                print(f"  {rise(detector, group, factor)}")
