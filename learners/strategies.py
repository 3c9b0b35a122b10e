"""Aggregation strategies: when to merge, and how contributions become the next parameters.

Pure state, no clock of its own (``now`` is passed in) and no transport; the math is in
:mod:`learners.aggregate`, the checks in :mod:`learners.ledger`. Every strategy keeps at most one
pending contribution per learner: a learner's later update already holds its earlier one.

- ``sync``: FedAvg rounds. Only updates built on the current version count; the round merges
  when ``quorum`` learners are in, or ``round_timeout`` seconds after it opened.
- ``fedasync``: every update is mixed in as it comes: x <- x + alpha·s(τ)·(params - x).
- ``fedbuff``: updates wait in a buffer; every ``buffer`` of them (or at the round timeout)
  x <- x + server_lr·merge(s(τ)·Δ).

Each may merge with a robust rule (median, trimmed mean) and clip every change to a norm.
A strategy is a subclass of :class:`Strategy` (its parameters and their defaults are its
dataclass fields) and one :func:`register` line; one outside the package is named
``package.module:ClassName`` (:mod:`learners.registry`).

>>> from broker.messages import Scaler
>>> def contribution(who, delta, n=10, tau=0):
...     d = np.array(delta, dtype=float)
...     return Contribution(who, 1, 0, tau, n, d, d, Scaler.empty(2))
>>> sync = SyncRounds(round_timeout=5.0)
>>> sync.offer(contribution("gw-0", [1.0, 0.0]), now=0.0)
>>> sync.ready(now=1.0, quorum=2)
False
>>> sync.offer(contribution("gw-1", [3.0, 2.0], n=30), now=1.0)
>>> sync.ready(now=1.0, quorum=2)
True
>>> merged = sync.merge(np.zeros(2))
>>> merged.vector.tolist(), [c.learner for c in merged.used]
([2.5, 1.5], ['gw-0', 'gw-1'])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from broker.messages import Scaler
from learners.aggregate import RULES, AggregationError, clip_by_norm, combine
from learners.ledger import Contribution
from learners.staleness import Staleness


@dataclass(frozen=True)
class MergeRule:
    """How a set of changes becomes one: a rule, its trim, and an optional norm clip."""

    rule: str = "mean"
    trim: float = 0.2
    clip_norm: float | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"merge rule must be one of {', '.join(RULES)}, not {self.rule!r}")
        if not 0.0 <= self.trim < 0.5:
            raise ValueError("trim must be in [0, 0.5)")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError("clip norm must be > 0")

    def apply(self, deltas: np.ndarray, weights: np.ndarray, scaler: Scaler | None,
              kind: str) -> tuple[np.ndarray, int]:
        clipped = 0
        if self.clip_norm is not None:
            deltas, clipped = clip_by_norm(deltas, self.clip_norm, scaler, kind)
        return combine(deltas, weights, self.rule, self.trim), clipped


@dataclass(frozen=True)
class Merged:
    """The next parameter vector, and the contributions it is made of."""

    vector: np.ndarray
    used: list[Contribution]
    clipped: int = 0


@dataclass
class Strategy(ABC):
    """When to merge (:meth:`ready`) and how (:meth:`merge`), over the pending contributions.

    The dataclass fields a subclass declares are its parameters, with their defaults (the
    command line reads them there); state it keeps is a field with ``init=False``. These three
    are every strategy's: the merge rule, the seconds a round or buffer waits for its quorum,
    and how many versions behind an update may be (the ledger refuses older ones).
    """

    merge_rule: MergeRule = field(default_factory=MergeRule)
    round_timeout: float = 2.0
    max_staleness: int = 8
    pending: dict[str, Contribution] = field(default_factory=dict, init=False, repr=False)
    opened_at: float | None = field(default=None, init=False, repr=False)

    name: ClassVar[str] = "strategy"  # in each model's notes, and the registry's key

    def offer(self, contribution: Contribution, now: float) -> None:
        self.pending.pop(contribution.learner, None)  # keep arrival order: latest last
        self.pending[contribution.learner] = contribution
        if self.opened_at is None:
            self.opened_at = now

    @abstractmethod
    def ready(self, now: float, quorum: int) -> bool:
        """Whether to merge now; ``quorum`` is the updates that close a round."""

    @abstractmethod
    def merge(self, current: np.ndarray, scaler: Scaler | None = None,
              kind: str = "regression") -> Merged:
        """The next parameters from ``current`` and the pending contributions, which it takes."""

    def first(self, used: list[Contribution], kind: str) -> np.ndarray:
        """The first model's parameters, made of the contributions of the first merge.

        There is nothing yet to mix into or step from (fedasync would otherwise take alpha of
        every weight, and the learners adopt that bias: measured, MAE 51 against 0.4 in the
        first rounds), so by default it is what came in, merged by the rule.
        """
        vector, _ = self.merge_rule.apply(np.stack([c.params for c in used]),
                                          np.array([c.n for c in used], dtype=float), None, kind)
        return vector

    def clear(self) -> None:
        self.pending.clear()
        self.opened_at = None

    def timed_out(self, now: float) -> bool:
        """Whether ``round_timeout`` seconds passed since the first pending contribution."""
        return self.opened_at is not None and now - self.opened_at >= self.round_timeout

    def take(self) -> list[Contribution]:
        """The pending contributions, by learner, and none left pending."""
        used = sorted(self.pending.values(), key=lambda c: c.learner)
        if not used:
            raise AggregationError("nothing to aggregate")
        self.clear()
        return used


#: The strategies known by name; ``package.module:ClassName`` names any other.
STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Make a strategy known by its ``name`` (a class decorator)."""
    STRATEGIES[cls.name] = cls
    return cls


@register
@dataclass
class SyncRounds(Strategy):
    """FedAvg rounds over the updates built on the current version (so max staleness 0)."""

    max_staleness: int = field(default=0, init=False)

    name: ClassVar[str] = "sync"

    def ready(self, now: float, quorum: int) -> bool:
        return bool(self.pending) and (len(self.pending) >= quorum or self.timed_out(now))

    def merge(self, current: np.ndarray, scaler: Scaler | None = None,
              kind: str = "regression") -> Merged:
        used = self.take()
        deltas = np.stack([c.delta for c in used])
        weights = np.array([c.n for c in used], dtype=float)
        step, clipped = self.merge_rule.apply(deltas, weights, scaler, kind)
        return Merged(current + step, used, clipped)


@register
@dataclass
class FedAsync(Strategy):
    """Mixes each update in as it comes, by a step that shrinks with its staleness."""

    alpha: float = 0.6
    staleness: Staleness = field(default_factory=Staleness)

    name: ClassVar[str] = "fedasync"

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")

    def ready(self, now: float, quorum: int) -> bool:
        return bool(self.pending)

    def merge(self, current: np.ndarray, scaler: Scaler | None = None,
              kind: str = "regression") -> Merged:
        used = list(self.pending.values())  # in arrival order
        self.clear()
        x, clipped = current.copy(), 0
        for c in used:
            change = (c.params - x)[None, :]
            if self.merge_rule.clip_norm is not None:
                change, n = clip_by_norm(change, self.merge_rule.clip_norm, scaler, kind)
                clipped += n
            x = x + self.alpha * self.staleness(c.staleness) * change[0]
        return Merged(x, used, clipped)


@register
@dataclass
class FedBuff(Strategy):
    """Buffers ``buffer`` updates (fewer if fewer learners are live), then applies their merged
    change, each weighted by its samples and its staleness, times ``server_lr``."""

    buffer: int = 4
    server_lr: float = 1.0
    staleness: Staleness = field(default_factory=Staleness)

    name: ClassVar[str] = "fedbuff"

    def __post_init__(self) -> None:
        if self.buffer < 1 or not self.server_lr > 0:
            raise ValueError("fedbuff needs buffer >= 1 and server_lr > 0")

    def ready(self, now: float, quorum: int) -> bool:
        return bool(self.pending) and (len(self.pending) >= min(self.buffer, quorum)
                                       or self.timed_out(now))

    def merge(self, current: np.ndarray, scaler: Scaler | None = None,
              kind: str = "regression") -> Merged:
        used = self.take()
        decay = np.array([self.staleness(c.staleness) for c in used])
        deltas = np.stack([c.delta for c in used]) * decay[:, None]
        weights = np.array([c.n for c in used], dtype=float)
        step, clipped = self.merge_rule.apply(deltas, weights, scaler, kind)
        return Merged(current + self.server_lr * step, used, clipped)
