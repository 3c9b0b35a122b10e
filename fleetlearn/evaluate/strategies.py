"""The strategies, each prequential (predict, then learn) on the same samples, in order.

- ``persistence``: a device's previous target is the prediction of its next.
- ``local``: each gateway learns alone from its own devices.
- ``central``: one learner over every reading.
- ``federated``: each gateway learns locally; every ``sync_every`` of its samples it sends an
  update to a :class:`~learners.federation.Federation` in this process, and when the round
  closes (an update from every gateway) every gateway adopts the merged model
  (:meth:`~learners.local.LocalLearner.adopt`), as gateways do. No wall clock: an update goes
  only after ``sync_every`` samples, and a round never times out.
- ``personalised``: the federated predictions plus each gateway's personal parts (per site or
  per device, :mod:`learners.personal`) learned on their residuals, as a gateway does.

Each returns one prediction per sample (NaN where none was made: a blank learner's first).

>>> from gateway.cleaning import CleaningConfig
>>> X = np.arange(8.0).reshape(-1, 1)
>>> y = 3.0 * X[:, 0]
>>> persistence(y, np.array([0, 1, 0, 1, 0, 1, 0, 1])).tolist()[:4]
[nan, nan, 0.0, 3.0]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from broker.messages import Model
from learners.federation import Federation, FederationConfig
from learners.linear import LinearModel
from learners.local import LocalLearner
from learners.personal import PersonalParts, key_of
from learners.steps import StepSearch

#: The strategies in the table's order.
NAMES = ("persistence", "local", "central", "federated", "personalised")

#: A blank learner as a gateway makes one (:meth:`~fleetlearn.evaluate.settings.
#: EvaluateSettings.learner`); a learner with shadows (``lr = "auto"``) may change its step
#: between blocks, so local and central learn in blocks of this many samples too.
MakeLearner = Callable[[], LocalLearner]
MakeModel = Callable[[], LinearModel]
MakeSearch = Callable[[], StepSearch | None]
BLOCK = 200


def _learn(learner: LocalLearner, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.concatenate([learner.learn(X[i:i + BLOCK], y[i:i + BLOCK])
                          for i in range(0, len(y), BLOCK)]) if len(y) else np.empty(0)
    return _first_nan(out, np.arange(len(y)))


def persistence(y: np.ndarray, device: np.ndarray) -> np.ndarray:
    """Each sample's prediction: its device's previous target (NaN for a device's first)."""
    out = np.full(len(y), np.nan)
    order = np.lexsort((np.arange(len(y)), device))  # by device, in arrival order
    same = device[order][1:] == device[order][:-1]
    out[order[1:][same]] = y[order[:-1][same]]
    return out


def _first_nan(predictions: np.ndarray, where: np.ndarray) -> np.ndarray:
    if len(where):
        predictions[where[0]] = np.nan  # a blank learner cannot guess
    return predictions


def central(X: np.ndarray, y: np.ndarray, make: MakeLearner) -> np.ndarray:
    """One learner over every sample."""
    return _learn(make(), X, y)


def local(X: np.ndarray, y: np.ndarray, gateway: np.ndarray, gateways: int,
          make: MakeLearner) -> np.ndarray:
    """Each gateway's own learner over its own samples."""
    out = np.full(len(y), np.nan)
    for g in range(gateways):
        mine = np.flatnonzero(gateway == g)
        out[mine] = _learn(make(), X[mine], y[mine])
    return out


@dataclass
class _Gateway:
    learner: LocalLearner
    rows: np.ndarray  # indices of its samples
    done: int = 0  # of them learned
    seq: int = 0  # of its last update


def federated(X: np.ndarray, y: np.ndarray, gateway: np.ndarray, gateways: int,
              make: MakeLearner, sync_every: int, target: str,
              config: FederationConfig | None = None
              ) -> tuple[np.ndarray, int, Counter[str], dict[str, float]]:
    """The federated predictions, how many models the federation made, the updates it
    refused, by reason, and each gateway's step at the end (``lr = "auto"`` changes it).

    Between two syncs the gateways do not interact, so each learns its samples up to the
    next update as one block (as a gateway learns a block)."""
    ids = [f"gw-{g}" for g in range(gateways)]
    fed = Federation(config or FederationConfig(quorum=gateways, learners=tuple(ids)))
    gws = [_Gateway(make(), np.flatnonzero(gateway == g)) for g in range(gateways)]
    out = np.full(len(y), np.nan)
    models = 0
    refused: Counter[str] = Counter()

    def learn_until(gw: _Gateway, end: int) -> None:
        """Learn its samples before global index ``end``."""
        stop = int(np.searchsorted(gw.rows, end))
        if stop > gw.done:
            rows = gw.rows[gw.done:stop]
            blank = gw.learner.learner.n_learned == 0
            out[rows] = gw.learner.learn(X[rows], y[rows])
            if blank:
                out[rows[0]] = np.nan
            gw.done = stop

    while True:
        due = []
        for gw in gws:
            k = gw.done + max(1, sync_every - gw.learner.since_send) - 1
            due.append(int(gw.rows[k]) if k < len(gw.rows) else len(y))
        first = int(np.argmin(due))
        at = due[first]
        for gw in gws:
            learn_until(gw, at + 1)
        if at >= len(y):
            steps = {i: g.learner.learner.lr for i, g in zip(ids, gws, strict=True)}
            return out, models, refused, steps
        gw = gws[first]
        gw.seq += 1
        update = gw.learner.update(ids[first], gw.seq, target, 0.0)
        refusal = fed.offer(update, ids[first], now=0.0)
        if refusal is not None:
            refused[refusal.reason] += 1
        else:
            model: Model | None = fed.step(now=0.0, ts=0.0)
            if model is not None:
                models += 1
                for other in gws:
                    other.learner.adopt(model, replace=True)


def personalised(X: np.ndarray, y: np.ndarray, gateway: np.ndarray, gateways: int,
                 make: MakeModel, base: np.ndarray, mode: str, site: str,
                 devices: np.ndarray, names: tuple[str, ...],
                 search: MakeSearch | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """The federated predictions ``base`` corrected by each gateway's personal parts (keyed
    by ``mode``: per site, or per device ``names[devices[i]]``), NaN where ``base`` is; and
    with ``search`` (``lr = "auto"``: the parts choose their step, so they learn in blocks)
    each gateway's step at the end."""
    keys = [key_of(mode, site, names[d]) for d in devices.tolist()]
    out = np.full(len(y), np.nan)
    steps = {}
    for g in range(gateways):
        mine = np.flatnonzero(gateway == g)
        parts = PersonalParts(make, search and search())
        for rows in np.split(mine, range(BLOCK, len(mine), BLOCK)) if search else [mine]:
            out[rows] = parts.learn([keys[i] for i in rows], X[rows], y[rows],
                                    np.nan_to_num(base[rows]))
        if parts.lr is not None:
            steps[f"gw-{g}"] = parts.lr
    out[np.isnan(base)] = np.nan
    return out, steps
