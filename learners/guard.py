"""The rollback guard: a merge that makes the fleet's error far worse is undone.

Learners report, with each update, their mean prequential loss over the samples since their
previous update (``recent_loss``, ``recent_n``): the loss of the model they were working from.
The guard pools these per base version and learner, and judges a version by the **median over
its learners** of each one's loss: a claim the aggregator cannot check, so no single learner
may set it. A liar among three or more moves the median no further than the honest learners
around it (a forged "loss 0.0" under a poisoned version cannot make it the good one, nor pin
every later honest version as "worse" and roll them all back to it). When the merge that
follows version ``v`` is due and ``v``'s loss is more than ``factor`` times that of the last
good version, the next model is the last good one again, with the reason.

>>> guard = RollbackGuard(factor=3.0, min_samples=10)
>>> guard.observe(1, loss=0.5, n=40)
>>> guard.judge(1, np.array([1.0, 0.0])) is None    # v1 is good: the reference
True
>>> guard.observe(2, loss=9.0, n=40)                # v2 is poisoned
>>> verdict = guard.judge(2, np.array([100.0, 0.0]))
>>> verdict.to_version, verdict.vector.tolist(), round(verdict.ratio, 1)
(1, [1.0, 0.0], 18.0)
>>> for who, loss in (("gw-0", 1.0), ("gw-1", 1.2), ("liar", 1e-9)):
...     guard.observe(3, loss=loss, n=40, learner=who)
>>> guard.loss(3)                                   # the median: the liar does not set it
1.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Rollback:
    """Go back to ``to_version``'s parameters: ``loss`` under the judged version is ``ratio``
    times the good one's."""

    judged_version: int
    to_version: int
    vector: np.ndarray
    loss: float
    good_loss: float

    @property
    def ratio(self) -> float:
        return self.loss / self.good_loss if self.good_loss > 0 else float("inf")

    def note(self, factor: float) -> dict[str, Any]:
        return {"to_version": self.to_version, "judged_version": self.judged_version,
                "reason": f"federated loss {self.loss:.4g} under version "
                          f"{self.judged_version} is {self.ratio:.1f}x the "
                          f"{self.good_loss:.4g} of version {self.to_version} "
                          f"(factor {factor:g})"}


@dataclass
class RollbackGuard:
    """Loss per model version and learner, and the last version that was good. ``factor`` 0:
    off."""

    factor: float = 3.0
    min_samples: int = 50
    # version -> learner -> [Σ loss·n, Σ n]
    pooled: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    good_version: int | None = None
    good_loss: float = 0.0
    good_vector: np.ndarray | None = None

    def observe(self, version: int, loss: float, n: float, learner: str = "") -> None:
        if n > 0 and np.isfinite(loss):
            acc = self.pooled.setdefault(version, {}).setdefault(learner, [0.0, 0.0])
            acc[0] += loss * n
            acc[1] += n

    def loss(self, version: int) -> float | None:
        """The median over learners of each one's mean loss under ``version``, once
        ``min_samples`` back it."""
        by_learner = self.pooled.get(version)
        if not by_learner or sum(acc[1] for acc in by_learner.values()) < self.min_samples:
            return None
        return float(np.median([acc[0] / acc[1] for acc in by_learner.values()]))

    def judge(self, version: int, vector: np.ndarray, drifting: bool = False
              ) -> Rollback | None:
        """Is ``version`` (with params ``vector``) far worse than the last good one?"""
        loss = self.loss(version)
        for old in [v for v in self.pooled if v < version - 16]:
            del self.pooled[old]
        if loss is None or not self.factor or version == 0:
            # version 0 is no fleet model: the losses under it are each learner's own learning
            # from scratch, no yardstick for a merged model (in a fleet whose sites differ,
            # every merge was judged far worse than them and rolled back to zeros)
            return None
        if (not drifting and self.good_vector is not None and self.good_version != version
                and loss > self.factor * self.good_loss):
            return Rollback(version, self.good_version, self.good_vector.copy(), loss,
                            self.good_loss)
        self.good_version, self.good_loss, self.good_vector = version, loss, vector.copy()
        return None

    def forget(self) -> None:
        """No version is the good one any more (the stream changed under the model)."""
        self.pooled.clear()
        self.good_version, self.good_loss, self.good_vector = None, 0.0, None

    def to_state(self) -> dict[str, Any]:
        return {"good_version": self.good_version, "good_loss": self.good_loss,
                "good_vector": self.good_vector}

    def restore(self, state: dict[str, Any]) -> None:
        self.good_version = state.get("good_version")
        self.good_loss = float(state.get("good_loss", 0.0))
        vector = state.get("good_vector")
        self.good_vector = None if vector is None else np.asarray(vector, dtype=float)
