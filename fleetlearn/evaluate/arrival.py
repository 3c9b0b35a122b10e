"""The federated strategy with the timing of a real fleet: seeded arrival orders.

:func:`fleetlearn.evaluate.strategies.federated` is deterministic: every gateway sends after
exactly ``sync_every`` samples and adopts each model at once. On a broker nothing is: a
gateway learns whatever block its turn took, some gateways run ahead of others, an update
arrives after its round closed (refused as ``stale``), and a model reaches each gateway some
samples after it was made. :func:`federated_arrivals` replays that with a seeded generator:
turns of random size at random relative speeds, and each model adopted a random number of
the gateway's own samples late; the aggregator is the real :class:`~learners.federation.
Federation` (sync rounds over every gateway, a round timeout in turns). Different seeds are
different runs of the same replay; a learner is stable when they score alike (issue 15
point 8, ``tests/unit/test_stability.py``).

>>> X = np.random.default_rng(0).normal(size=(600, 1)); y = 2.0 * X[:, 0] + 1.0
>>> from learners.linear import LinearModel
>>> from learners.local import LocalLearner
>>> make = lambda: LocalLearner(LinearModel(("x",)))
>>> p = federated_arrivals(X, y, np.arange(600) % 2, 2, make, 50, "y", Timing(seed=1))
>>> bool(np.isnan(p[0])), bool(abs(p[-1] - y[-1]) < 0.1)
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleetlearn.evaluate.strategies import MakeLearner
from learners.federation import Federation, FederationConfig
from learners.strategies import SyncRounds


@dataclass(frozen=True)
class Timing:
    """How irregular the run is: a turn learns ``block`` samples (low, high), gateways run at
    speeds up to ``spread`` times one another, a model arrives up to ``delay`` samples late,
    and a round times out after ``timeout`` turns."""

    seed: int = 0
    block: tuple[int, int] = (1, 200)
    spread: float = 3.0
    delay: tuple[int, int] = (0, 400)
    timeout: int = 200


def federated_arrivals(X: np.ndarray, y: np.ndarray, gateway: np.ndarray, gateways: int,
                       make: MakeLearner, sync_every: int, target: str, timing: Timing
                       ) -> np.ndarray:
    """Each sample's federated prediction (NaN: a blank learner's first) in one seeded run."""
    rng = np.random.default_rng(timing.seed)
    ids = tuple(f"gw-{g}" for g in range(gateways))
    fed = Federation(FederationConfig(SyncRounds(round_timeout=float(timing.timeout)),
                                      quorum=gateways, learners=ids, max_rate=0))
    rows = [np.flatnonzero(gateway == g) for g in range(gateways)]
    learners = [make() for _ in range(gateways)]
    done, seq = [0] * gateways, [0] * gateways
    speed = rng.uniform(1.0, timing.spread, gateways)
    inbox: list[list] = [[] for _ in range(gateways)]  # (due after this many samples, model)
    out = np.full(len(y), np.nan)
    turn = 0
    while live := [g for g in range(gateways) if done[g] < len(rows[g])]:
        turn += 1
        g = live[rng.choice(len(live), p=speed[live] / speed[live].sum())]
        mine = rows[g][done[g]:done[g] + int(rng.integers(*timing.block))]
        blank = learners[g].learner.n_learned == 0
        out[mine] = learners[g].learn(X[mine], y[mine])
        if blank:
            out[mine[0]] = np.nan
        done[g] += len(mine)
        for item in [i for i in inbox[g] if i[0] <= done[g]]:
            learners[g].adopt(item[1], replace=True)
            inbox[g].remove(item)
        if learners[g].since_send >= sync_every or done[g] == len(rows[g]):
            seq[g] += 1
            fed.offer(learners[g].update(ids[g], seq[g], target, 0.0), ids[g], now=turn)
        model = fed.step(now=turn, ts=0.0)
        if model is not None:
            for h in range(gateways):
                inbox[h].append((done[h] + int(rng.integers(*timing.delay)), model))
    return out
