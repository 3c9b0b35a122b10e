"""A strategy defined outside fleetlearn: FedAvg rounds whose server step warms up.

The first rounds of a fresh fleet average changes learned from few readings each; this strategy
takes only ``start_lr`` of their merged change at first, and a growing share over ``warmup``
merges, then all of it (plain FedAvg). The first model is still what came in, merged by the rule
(:meth:`learners.strategies.Strategy.first`, which a strategy may override too).

Run the aggregator with it, this file's directory on the import path:

    PYTHONPATH=docs/examples fleetlearn aggregator --strategy custom_strategy:WarmupFedAvg

It takes the options every strategy does (``--merge``, ``--trim``, ``--clip-norm``,
``--round-timeout``) and its own defaults for ``warmup`` and ``start_lr``: a strategy is given
only the options it declares as parameters (its dataclass fields).

>>> import numpy as np
>>> from broker.messages import Scaler
>>> from learners.ledger import Contribution
>>> def change(who, delta, n=10):
...     d = np.array(delta, dtype=float)
...     return Contribution(who, 1, 0, 0, n, d, d, Scaler.empty(2))
>>> s = WarmupFedAvg(warmup=4, start_lr=0.2)
>>> [round(s.server_lr(k), 2) for k in range(6)]
[0.2, 0.4, 0.6, 0.8, 1.0, 1.0]
>>> s.offer(change("gw-0", [1.0, 2.0]), now=0.0)
>>> s.ready(now=0.0, quorum=2), s.ready(now=2.0, quorum=2)  # the quorum, or the round timeout
(False, True)
>>> s.merge(np.zeros(2)).vector.tolist()  # merge 0: a fifth of the change
[0.2, 0.4]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from broker.messages import Scaler
from learners.strategies import Merged, SyncRounds


@dataclass
class WarmupFedAvg(SyncRounds):
    """FedAvg rounds over the current version (it extends ``sync``: when a round is ready and
    how its changes merge), the server step ramped from ``start_lr`` to 1 over ``warmup``
    merges."""

    warmup: int = 5
    start_lr: float = 0.2
    merges: int = field(default=0, init=False)  # state, not a parameter

    name = "warmup-fedavg"  # in each model's notes

    def __post_init__(self) -> None:
        if self.warmup < 1 or not 0.0 < self.start_lr <= 1.0:
            raise ValueError("warmup must be >= 1 and start_lr in (0, 1]")

    def server_lr(self, merges: int) -> float:
        """The share of the merged change taken at merge number ``merges`` (from 0)."""
        return self.start_lr + (1.0 - self.start_lr) * min(merges / self.warmup, 1.0)

    def merge(self, current: np.ndarray, scaler: Scaler | None = None,
              kind: str = "regression") -> Merged:
        merged = super().merge(current, scaler, kind)  # the full FedAvg step
        lr = self.server_lr(self.merges)
        self.merges += 1
        return Merged(current + lr * (merged.vector - current), merged.used, merged.clipped)
