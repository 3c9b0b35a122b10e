"""Concept drift: a learner watches its own prequential error; the aggregator reacts.

Each gateway feeds the absolute error of every prediction it makes before learning (river's
ADWIN, or Page-Hinkley) and reports in its next update how many changes it detected. The
aggregator's policy says what a flagged merge does, and the model's ``notes`` say so:

- ``none``: note it, change nothing;
- ``rescale``: the model goes on from the one before the flagged merge, its slopes kept and
  its intercept re-centred on the new data's means, and it forgets the fleet's moments of the
  old concept, so every learner standardises by what came since (and drops its progress since
  its last send, learned under the old scaling). A shifted target otherwise stays measured in
  the old spread, and the error clip (3 standardised units) throttles every step. (Forgetting
  AdaGrad's accumulated gradients instead was measured too: no faster, then jittery.)
- ``reset``: forget the old concept: zero weights (the intercept at the recent target mean),
  the recent moments, and learners forget their optimizer state and local progress.

>>> monitor = DriftMonitor()
>>> rng = np.random.default_rng(0)
>>> monitor.update_many(np.abs(rng.normal(0.0, 0.1, 3000)))
0
>>> monitor.update_many(np.abs(rng.normal(0.0, 3.0, 3000))) > 0     # the error rises
True
>>> monitor.update_many(np.abs(rng.normal(0.0, 0.1, 3000)))          # and falls again
0
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import numpy as np  # noqa: F401  (the doctest uses it)

DETECTORS = ("adwin", "page-hinkley")
POLICIES = ("none", "rescale", "reset")


class DriftMonitor:
    """A change detector over a stream of prediction errors. Only a real rise counts: when the
    detector fires, the mean of the last ``recent`` errors must be ``rise`` times the mean it
    held before (a learner whose error falls is learning, and one whose error wobbles after a
    rescaled step must not set off another); nothing counts in the first ``warmup`` errors."""

    def __init__(self, detector: str = "adwin", rise: float = 3.0, recent: int = 64,
                 warmup: int = 1000) -> None:
        check_detector(detector)
        self.warmup = warmup  # errors of a learner still converging are not judged
        self.seen = 0
        self.rise = rise
        self.recent: deque[float] = deque(maxlen=recent)
        from river import drift  # here: only gateways pay for importing river

        self._adwin = detector == "adwin"
        # Page-Hinkley's mode "up" watches for a rise only
        self.detector = drift.ADWIN() if self._adwin else drift.PageHinkley(mode="up")
        self.detections = 0

    def update_many(self, errors: Iterable[float]) -> int:
        """Feed errors in order; return how many changes they revealed."""
        found = 0
        detector, recent = self.detector, self.recent
        for error in errors:
            before = detector.estimation if self._adwin else 0.0
            recent.append(float(error))
            detector.update(float(error))
            self.seen += 1
            if detector.drift_detected and self.seen > self.warmup and (
                    not self._adwin or sum(recent) / len(recent) > self.rise * before):
                found += 1
        self.detections += found
        return found


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ValueError(f"drift policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    return policy


def check_detector(detector: str) -> str:
    if detector not in DETECTORS:
        raise ValueError(f"drift detector must be one of {', '.join(DETECTORS)}, not "
                         f"{detector!r}")
    return detector
