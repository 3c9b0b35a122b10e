"""Synchronous rounds: which updates count for the next model, and when to merge.

Pure state, no clock of its own (``now`` is passed in) and no transport.

>>> rounds = SyncRounds(quorum=2, round_timeout=5.0)
>>> p, s = LinearParams(("x",), np.array([1.0]), 0.0), Scaler.empty(2)
>>> rounds.offer(Update("gw-0", 1, 0, 10, "y", p, 0.0, s), now=0.0)
'accepted'
>>> rounds.ready(now=1.0)
False
>>> rounds.offer(Update("gw-1", 1, 0, 30, "y", p, 0.0, s), now=1.0)
'accepted'
>>> merged = rounds.close()
>>> rounds.version, merged.contributors, merged.n
(1, ('gw-0', 'gw-1'), 40)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np  # noqa: F401  (the doctest uses it)

from broker.codec import LinearParams, Scaler, Update
from learners.aggregate import fedavg
from learners.stats import merge

ACCEPTED = "accepted"
STALE = "stale"
FUTURE = "future_version"
REPLAYED = "replayed"

@dataclass
class SyncRounds:
    """Collects the updates built on the current version; merges at quorum or timeout.

    A learner that sends again within a round replaces its earlier update: its parameters
    already include what the earlier one learned.
    """

    quorum: int = 1
    round_timeout: float = 2.0
    version: int = 0
    pending: dict[str, Update] = field(default_factory=dict)
    last_seq: dict[str, int] = field(default_factory=dict)
    opened_at: float | None = None

    def offer(self, update: Update, now: float) -> str:
        """Take an update into the round, or say why not."""
        if update.seq <= self.last_seq.get(update.learner, -1):
            return REPLAYED
        if update.base_version < self.version:
            return STALE
        if update.base_version > self.version:
            return FUTURE
        self.last_seq[update.learner] = update.seq
        self.pending[update.learner] = update
        if self.opened_at is None:
            self.opened_at = now
        return ACCEPTED

    def ready(self, now: float) -> bool:
        """Quorum reached, or the round has waited long enough for anything it has."""
        if not self.pending:
            return False
        if len(self.pending) >= self.quorum:
            return True
        return now - self.opened_at >= self.round_timeout

    def close(self) -> RoundResult:
        """Merge the round: parameters (FedAvg), who contributed, samples, and their moments."""
        updates = sorted(self.pending.values(), key=lambda u: u.learner)
        params = fedavg([(u.params, u.n) for u in updates])
        scaler = updates[0].scaler
        for u in updates[1:]:
            scaler = merge(scaler, u.scaler)
        self.version += 1
        self.pending.clear()
        self.opened_at = None
        return RoundResult(params, tuple(u.learner for u in updates),
                           int(sum(u.n for u in updates)), scaler, updates[0].kind)


@dataclass(frozen=True)
class RoundResult:
    params: LinearParams
    contributors: tuple[str, ...]
    n: int
    scaler: Scaler  # the moments of what the round's updates learned
    kind: str

