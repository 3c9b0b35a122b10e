"""Who may contribute to the model, and how many samples one update may claim.

Two pure checks the federation makes before an update reaches the ledger's bookkeeping:

- :class:`Roster`: the learner ids the aggregator accepts (``--learners``, or the gateways
  ``fleetlearn up`` starts). An id not on it is refused as ``unknown_learner``. Without a
  roster every id is accepted, as before (the aggregator says so once in its log).
  :meth:`Roster.admit` is the hook for a second source of ids (the signing work: the learners
  whose public keys are trusted).
- :class:`SampleBudget`: a learner cannot have learned more readings than the stream can bring
  it in the time since it was last heard. An update's ``n`` counts the samples since the
  learner took its base model. With ``max_rate`` samples a second at most (per learner), ``n``
  may exceed the ``n`` of the learner's last accepted update on the same base by at most
  ``max_rate`` x the seconds since that update; on a new base (its samples all came after its
  last update was sent) ``n`` itself is so bounded; a learner not accepted yet counts from the
  aggregator's start. ``n`` is what weights an update in a merge, so a forged ``n`` =
  1,000,000 from an id that just appeared weighs no more than the time it can account for.
  ``max_rate`` 0: no bound (only ``max_samples``).

>>> roster = Roster(frozenset({"gw-0", "gw-1"}))
>>> roster.admits("gw-0"), roster.admits("mallory")
(True, False)
>>> Roster().admits("anyone"), Roster().open
(True, True)
>>> budget = SampleBudget(max_rate=100.0, started=10.0)
>>> budget.limit("gw-0", base=0, now=12.5)      # 2.5 s since the aggregator started
250.0
>>> budget.spent("gw-0", base=0, n=200, now=12.5)
>>> budget.limit("gw-0", base=0, now=13.0)      # 200 then, and 0.5 s since
250.0
>>> budget.limit("gw-0", base=1, now=13.0)      # a new base: what 0.5 s can bring
50.0
>>> SampleBudget(max_rate=0.0, started=0.0).limit("gw-0", base=0, now=1.0)
inf
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

#: Samples a second one learner may claim unless told: above what one gateway takes in on this
#: machine's benchmarks (about 430,000 readings/s), so it never refuses a real one.
DEFAULT_MAX_RATE = 1_000_000.0


@dataclass
class Roster:
    """The learner ids accepted; ``members`` None: any id (no roster configured)."""

    members: frozenset[str] | None = None

    @property
    def open(self) -> bool:
        return self.members is None

    def admits(self, learner: str) -> bool:
        return self.members is None or learner in self.members

    def admit(self, learners: Iterable[str]) -> None:
        """Add ids from another source (such as trusted signing keys); an open roster becomes
        closed to all but these from then on only if it was closed before."""
        if self.members is not None:
            self.members = self.members | frozenset(learners)


@dataclass
class SampleBudget:
    """The most new samples a learner can bring now (see the module)."""

    max_rate: float
    started: float  # the aggregator's monotonic clock when it started
    # learner -> (when, base version, n) of its last accepted update
    last: dict[str, tuple[float, int, int]] = field(default_factory=dict)

    def limit(self, learner: str, base: int, now: float) -> float:
        """The largest ``n`` an update of ``learner`` on ``base`` may claim at ``now``."""
        if self.max_rate <= 0:
            return float("inf")
        when, last_base, n = self.last.get(learner, (self.started, -1, 0))
        return (n if last_base == base else 0) + self.max_rate * max(0.0, now - when)

    def spent(self, learner: str, base: int, n: int, now: float) -> None:
        """``learner``'s update on ``base`` claiming ``n`` was accepted at ``now``."""
        self.last[learner] = (now, base, n)
