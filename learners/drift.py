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

What the detector sees: one input per group of ``GROUP`` (4) consecutive errors, their sum.
Groups count from the first error and an unfinished one carries over to the next call, so what
is found does not depend on how the stream was cut into blocks; a change shows when its group
ends, at most 3 errors later than fed error by error (ADWIN's clock becomes 32 / 4 inputs, so
it still looks every 32 errors). Sums, not means: ADWIN's bound has a term for one input's
range that does not shrink with the inputs' variance, so means of 32 made it ~20x slower (a
10x rise found after 440 errors instead of 24, a 4x rise not at all); a sum scales the
difference and the deviation alike, and on independent errors the test is the one it was per
error. Page-Hinkley summing a group accumulates the same deviations (its delta x 4, its
alpha ** 4). Settings given in errors (grace period, minimum window, minimum instances) are
rounded up to whole groups. The rules: a detection counts only after ``warmup`` errors, and for
ADWIN only if the mean of the last ``recent`` errors (up to the group's end, kept in a numpy
tail, no per-error Python) is ``rise`` times the detector's mean before that group.

Why 4 and not 32 (which costs 0.03 µs an error): a gateway's errors are not independent (they
ramp as the model drifts), so a group's sum varies more than independent errors' would, and
ADWIN over few long groups is slower to be sure. In the drift scenario (`fleetlearn.bench.drift
.run_policy("rescale", drift_at=6, duration=22)`, seeds 0-3) ADWIN first fires on the errors'
early, small rise (not counted: under 3x) and restarts; the error then jumps ~100x, and fed
error by error it counts that jump ~200 errors later in at least one gateway of every run.
Groups of 32: 2 runs of 5 reacted (seeds 1 and 2 never, replayed error streams confirm it);
groups of 8: 2 of 3; groups of 4: 3 of 3 (seeds 1-3), and the four gateway streams recorded
from error-by-error runs, replayed, count the jump at 3,200-3,250 errors with groups of 4 (2 of
4 error by error).

Offline, against feeding every error (``group=1``: the detectors as river ships them), with
``python scripts/drift_behaviour.py``: 5 seeds x 100,000 stationary errors |N(0, 0.1)|, and 20
runs of a rise after 5,000 errors (median delay, in errors), groups of 4 change nothing:

- stationary: no detection, either way;
- ADWIN: a 3x rise found in 4/20 runs both (at exactly 3x the rise rule is a coin toss: the
  mean before already holds some risen errors), 4x in 19/20, 10x in 20/20; delays 88, 56 and
  24 errors; never more than one detection a rise (groups of 32: 6/20, 20/20, 20/20, the same
  delays);
- Page-Hinkley: delays 2x 728, 3x 342 -> 344, 4x 220 -> 222, 10x 72; one detection a rise up
  to 4x, at 10x 2-6 -> 2-4 (it has no rise rule: after its reset the larger errors' noise
  crosses its absolute threshold of 50 again).

Cost per error, 100,000 errors in blocks of 200, best of 7: 0.39 µs -> 0.11 µs (39-41 ms per
loop before, 11 ms after; in blocks of 20 0.42 -> 0.24 µs, of 1000 0.39 -> 0.10 µs)::

    python -m timeit -n 3 -r 7 -s "import numpy as np, river.drift; \\
        from learners.drift import DriftMonitor; \\
        e = np.abs(np.random.default_rng(0).normal(0, 0.1, 100_000))" \\
        "m = DriftMonitor(); [m.update_many(e[i:i + 200]) for i in range(0, 100_000, 200)]"

Most of what is left is river's ADWIN, ~0.5 µs an input (``estimation`` and ``update``).

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

from collections.abc import Iterable

import numpy as np

DETECTORS = ("adwin", "page-hinkley")
POLICIES = ("none", "rescale", "reset")

GROUP = 4  # errors a detector input summarises (why 4: the module's docstring)


class DriftMonitor:
    """A change detector over a stream of prediction errors. Only a real rise counts: when the
    detector fires, the mean of the last ``recent`` errors must be ``rise`` times the mean it
    held before (a learner whose error falls is learning, and one whose error wobbles after a
    rescaled step must not set off another); nothing counts in the first ``warmup`` errors.
    The detector sees the sum of each ``group`` errors (1: every error, as river's own)."""

    def __init__(self, detector: str = "adwin", rise: float = 3.0, recent: int = 64,
                 warmup: int = 1000, group: int = GROUP) -> None:
        check_detector(detector)
        self.warmup = warmup  # errors of a learner still converging are not judged
        self.seen = 0
        self.rise = rise
        self.recent = recent
        self.group = group
        # the last max(recent, group) errors: the recent mean, and the group under way
        self._tail = np.empty(0)
        from river import drift  # here: only gateways pay for importing river

        self._adwin = detector == "adwin"
        if self._adwin:
            # river's defaults (clock 32, min_window_length 5, grace_period 10) were in errors
            self.detector = drift.ADWIN(clock=max(1, 32 // group),
                                        min_window_length=_groups(5, group),
                                        grace_period=_groups(10, group))
        else:
            # Page-Hinkley's mode "up" watches for a rise only; fed group sums, its cumulative
            # deviation is the one per error, so its threshold keeps its meaning
            self.detector = drift.PageHinkley(
                mode="up", min_instances=_groups(30, group), delta=0.005 * group,
                alpha=(1 - 0.0001) ** group)
        self.detections = 0

    def update_many(self, errors: Iterable[float]) -> int:
        """Feed errors in order; return how many changes they revealed."""
        errors = np.asarray(errors, dtype=np.float64).ravel()
        if not errors.size:
            return 0
        group, tail = self.group, self._tail
        buffer = np.concatenate((tail, errors)) if tail.size else errors
        keep = len(tail)
        under_way = self.seen % group  # errors of the unfinished group, at the end of the tail
        start = keep - under_way
        groups = (len(buffer) - start) // group
        found = 0
        if groups:
            sums = buffer[start:start + groups * group].reshape(groups, group).sum(axis=1)
            for i, before, fired in self._feed(sums.tolist()):
                if not fired:
                    continue
                end = start + (i + 1) * group  # the group's last error, in buffer
                if self.seen + end - keep <= self.warmup:
                    continue
                recent = buffer[max(0, end - self.recent):end]
                if not self._adwin or float(recent.mean()) > self.rise * before:
                    found += 1
        self.seen += errors.size
        self._tail = buffer[-max(self.recent, group):].copy()
        self.detections += found
        return found


    def _feed(self, sums: list[float]):
        """(index, the detector's mean per error before, whether it fired) for each sum."""
        detector, group = self.detector, self.group
        helper = getattr(detector, "_helper", None) if self._adwin else None
        if helper is None:  # Page-Hinkley, or a river whose ADWIN has no Rust core
            for i, x in enumerate(sums):
                before = detector.estimation / group if self._adwin else 0.0
                detector.update(x)
                yield i, before, detector.drift_detected
            return
        # river's ADWIN is a Python wrapper around a Rust core; its properties cost ~4x the
        # core's calls (0.11 -> 0.05 µs an error). The wrapper restarts the core on the update
        # after a detection; so does this, right after it.
        width, total, update = helper.get_width, helper.get_total, helper.update
        for i, x in enumerate(sums):
            w = width()
            before = total() / w / group if w else 0.0
            if update(x):
                detector._reset()
                helper = detector._helper
                width, total, update = helper.get_width, helper.get_total, helper.update
                yield i, before, True


def _groups(errors: int, group: int) -> int:
    """How many groups hold ``errors`` errors (at least one)."""
    return max(1, -(-errors // group))


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ValueError(f"drift policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    return policy


def check_detector(detector: str) -> str:
    if detector not in DETECTORS:
        raise ValueError(f"drift detector must be one of {', '.join(DETECTORS)}, not "
                         f"{detector!r}")
    return detector
