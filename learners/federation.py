"""The aggregator's whole decision, free of transport: updates in, the next model out.

It checks each update (:mod:`learners.ledger`), hands the contribution to a strategy
(:mod:`learners.strategies`), and when the strategy is ready builds the next version: the merged
parameters (with server momentum, if set), the fleet's moments merged exactly, the drift policy
(:mod:`learners.drift`) and the rollback guard (:mod:`learners.guard`). It also knows which
learners are live, to size the quorum, and turns its state into a checkpoint and back.

>>> from broker.messages import LinearParams, Scaler, Update
>>> fed = Federation(FederationConfig(quorum=2))
>>> def update(who, w, n):
...     p = LinearParams(("x",), np.array([w]), 0.0)
...     return Update(who, 1, 0, n, "y", p, 0.0, Scaler(n, np.zeros(2), np.ones(2)))
>>> fed.offer(update("gw-0", 1.0, 10), "gw-0", now=0.0) is None
True
>>> fed.step(now=0.1, ts=0.0) is None      # waits for the quorum
True
>>> _ = fed.offer(update("gw-1", 4.0, 30), "gw-1", now=0.2)
>>> model = fed.step(now=0.2, ts=0.0)
>>> model.version, model.params.weights.tolist(), model.n, model.contributors
(1, [3.25], 40, ('gw-0', 'gw-1'))
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from broker.messages import Model, Scaler, Update
from broker.model_codec import decode_model, encode_model
from learners.admission import DEFAULT_MAX_RATE, Roster, SampleBudget
from learners.aggregate import as_params
from learners.drift import check_policy
from learners.guard import RollbackGuard
from learners.imbalance import fleet_threshold
from learners.ledger import DEFAULT_MAX_SAMPLES, DEFAULT_MAX_SEQ_JUMP, Refusal, UpdateLedger
from learners.steps import choose
from learners.strategies import Strategy, SyncRounds

CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class FederationConfig:
    """Everything the aggregator decides by. ``quorum`` 0: every live learner.

    ``strategy`` is a template with its parameters (:func:`learners.registry.build_strategy`
    makes one from a name): each :class:`Federation` works on a copy of its own.
    """

    strategy: Strategy = field(default_factory=SyncRounds)
    quorum: int = 0
    momentum: float = 0.0
    max_samples: int = DEFAULT_MAX_SAMPLES
    drift_policy: str = "rescale"
    drift_cooldown: int = 5
    rollback_factor: float = 3.0
    rollback_min_samples: int = 50
    #: the learner ids accepted (:class:`learners.admission.Roster`); None: any
    learners: tuple[str, ...] | None = None
    max_rate: float = DEFAULT_MAX_RATE  # samples/s one learner may claim; 0: no bound
    max_seq_jump: int = DEFAULT_MAX_SEQ_JUMP

    def __post_init__(self) -> None:
        if self.quorum < 0 or self.max_samples < 1 or self.drift_cooldown < 0:
            raise ValueError("quorum and drift cooldown must be >= 0, max samples >= 1")
        if self.max_rate < 0 or self.max_seq_jump < 1:
            raise ValueError("max rate must be >= 0, max seq jump >= 1")
        if self.learners is not None and not self.learners:
            raise ValueError("a roster of learners names at least one")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError("server momentum must be in [0, 1)")
        if self.rollback_factor and self.rollback_factor <= 1.0:
            raise ValueError("the rollback factor must be > 1 (or 0: no guard)")
        check_policy(self.drift_policy)
        if not isinstance(self.strategy, Strategy):
            raise ValueError(f"the strategy must be a Strategy, not {self.strategy!r}")


class Federation:
    """The current model, the pending contributions, and who is live."""

    def __init__(self, config: FederationConfig, started: float | None = None) -> None:
        """``started``: the clock (as ``offer``'s ``now``) when the aggregator started, from
        which a learner's sample budget (``max_rate``) runs until its first accepted update;
        None: no clock, so no budget (only ``max_samples``)."""
        self.config = config
        self.strategy = copy.deepcopy(config.strategy)  # pending state of its own
        self.ledger = UpdateLedger(max_staleness=self.strategy.max_staleness,
                                   max_samples=config.max_samples,
                                   max_seq_jump=config.max_seq_jump)
        self.roster = Roster(None if config.learners is None else frozenset(config.learners))
        self.budget = SampleBudget(config.max_rate if started is not None else 0.0, started or 0.0)
        self.guard = RollbackGuard(config.rollback_factor, config.rollback_min_samples)
        self.model: Model | None = None
        self.velocity: np.ndarray | None = None
        self.learners: set[str] = set()  # every learner that ever sent an accepted update
        self.offline: set[str] = set()
        self.drift_quiet_until = 0  # no drift reaction before this version
        self.rollbacks = 0
        #: each learner's latest update's metrics: shadow losses (learners.steps), decision
        #: threshold (learners.imbalance); not checkpointed: the next updates bring them again
        self.reports: dict[str, dict[str, float]] = {}

    @property
    def version(self) -> int:
        return self.ledger.version

    @property
    def local_time(self) -> dict[str, Any]:
        """The task's local time (the ledger's, from its first update or model): models
        carry it."""
        return dict(self.ledger.local_time or {})

    # ---------------------------------------------------------------- in

    def offer(self, update: Update, topic_learner: str, now: float,
              wall: float | None = None) -> Refusal | None:
        """Take an update into the strategy, or say why not. ``wall``: the clock in seconds
        since the epoch, which bounds a learner's first seq (:meth:`seq_ceiling`)."""
        if not self.roster.admits(topic_learner):
            return Refusal("unknown_learner", f"{topic_learner!r} is not on the roster of "
                           "learners")
        verdict = self.ledger.check(update, topic_learner,
                                    self.budget.limit(update.learner, update.base_version, now),
                                    None if wall is None else self.seq_ceiling(wall))
        if isinstance(verdict, Refusal):
            return verdict
        self.budget.spent(update.learner, update.base_version, update.n, now)
        self.learners.add(update.learner)
        self.offline.discard(update.learner)
        self.guard.observe(update.base_version, update.metrics.get("recent_loss", np.nan),
                           update.metrics.get("recent_n", 0.0), learner=update.learner)
        self.strategy.offer(verdict, now)
        self.reports[update.learner] = update.metrics
        return None

    def seq_ceiling(self, wall: float) -> int:
        """The largest seq a learner can have reached at ``wall``: a gateway's seq is its clock
        in µs at start plus one an update (learners counting from 0 stay far below).

        >>> Federation(FederationConfig(max_seq_jump=10)).seq_ceiling(2.0)
        2000010
        """
        return int(wall * 1e6) + self.config.max_seq_jump

    def set_status(self, node: str, online: bool) -> None:
        """A node's retained status changed (its last will says offline when it dies)."""
        if online:
            self.offline.discard(node)
        else:
            self.offline.add(node)

    def quorum(self) -> int:
        """Updates that close a round: the configured quorum less the learners known to be
        offline; with ``quorum`` 0, every live learner. At least 1.

        >>> fed = Federation(FederationConfig(quorum=3))
        >>> fed.learners = {"gw-0", "gw-1", "gw-2"}
        >>> fed.set_status("gw-2", online=False)
        >>> fed.quorum()
        2
        """
        if self.config.quorum == 0:
            return max(1, len(self.learners - self.offline))
        return max(1, self.config.quorum - len(self.learners & self.offline))

    def resume(self, model: Model) -> bool:
        """Go on from a model newer than ours (a retained one, or a checkpoint's)."""
        if model.version <= self.version:
            return False
        self.model = model
        self.ledger.adopt(model)
        self.strategy.clear()
        self.velocity = None
        return True

    # ---------------------------------------------------------------- out

    def step(self, now: float, ts: float) -> Model | None:
        """The next model, if the strategy is ready to merge."""
        if not self.strategy.ready(now, self.quorum()):
            return None
        features, kind, target = self.ledger.features, self.ledger.kind, self.ledger.target
        current = self.ledger.current(len(features) + 1)
        previous = self.model
        merged = self.strategy.merge(current, previous.scaler if previous else None, kind)
        used = merged.used
        notes: dict[str, Any] = {"strategy": self.strategy.name,
                                 "merge": self.strategy.merge_rule.rule,
                                 "staleness": {c.learner: c.staleness for c in used},
                                 # the update of each merged (learners.inclusion)
                                 "seqs": {c.learner: c.seq for c in used}}
        if merged.clipped:
            notes["clipped"] = merged.clipped
        if (step := choose(self.reports)) is not None:
            notes["step"] = {"index": step[0], "loss": step[1]}
        if kind == "binary" and (threshold := fleet_threshold(self.reports)) is not None:
            notes["threshold"] = threshold  # the fleet's decision threshold
        if previous is None:  # nothing yet to mix into or step from (Strategy.first says why)
            vector = self.strategy.first(used, kind)
        else:
            vector = self._with_momentum(current, merged.vector)
        recent = used[0].scaler  # the moments of what this merge's updates learned
        for c in used[1:]:
            recent += c.scaler
        # the fleet's moments: exact, not averaged
        scaler = recent if previous is None else previous.scaler + recent
        drifted = sorted(c.learner for c in used if c.drift > 0)
        rollback = self.guard.judge(self.version, current, drifting=bool(drifted))
        if rollback is not None:
            vector, self.velocity = rollback.vector, None
            notes["rollback"] = rollback.note(self.config.rollback_factor)
            self.rollbacks += 1
        elif drifted and self.version >= self.drift_quiet_until:
            vector, scaler = self._react_to_drift(vector, current, scaler, recent, kind,
                                                  drifted, notes)
        model = Model(version=self.version + 1, ts=ts,
                      n=(previous.n if previous else 0) + sum(c.n for c in used),
                      contributors=tuple(c.learner for c in used), target=target,
                      params=as_params(features, vector), scaler=scaler, kind=kind, notes=notes,
                      local_time=self.local_time)
        self.ledger.record(model, used)
        self.model = model
        return model

    def _with_momentum(self, current: np.ndarray, merged: np.ndarray) -> np.ndarray:
        beta = self.config.momentum
        if not beta:
            return merged
        step = merged - current
        self.velocity = step if self.velocity is None else beta * self.velocity + step
        return current + self.velocity

    def _react_to_drift(self, vector: np.ndarray, current: np.ndarray, scaler: Scaler,
                        recent: Scaler, kind: str, drifted: list[str], notes: dict[str, Any]
                        ) -> tuple[np.ndarray, Scaler]:
        """Rescale and reset both forget the fleet's moments of the old concept: the learners
        standardise by what came since. Rescale goes on from the model before this merge: the
        updates that flag a drift learned its first readings under the old scaling, where a
        shifted target drives the weights far off (measured: a model 22x off the new truth,
        which the new scaling then kept). Reset forgets the weights, and learners their
        step history, too."""
        policy = self.config.drift_policy
        notes["drift"] = {"policy": policy, "learners": drifted}
        if policy == "none":
            return vector, scaler
        self.drift_quiet_until = self.version + 1 + self.config.drift_cooldown
        self.velocity = None
        self.guard.forget()  # losses of the old concept are no yardstick for the new one
        if policy == "rescale":
            kept = current.copy()
            if kind == "regression" and recent.count:
                # re-centre: the old slopes, with the intercept at the new data's means
                kept[-1] = recent.mean[-1] - kept[:-1] @ recent.mean[:-1]
            return kept, recent
        fresh = np.zeros_like(vector)
        if kind == "regression" and recent.count:
            fresh[-1] = recent.mean[-1]
        return fresh, recent

    # ---------------------------------------------------------------- checkpoints

    def to_state(self) -> dict[str, Any]:
        """Everything needed to go on after a restart (pending contributions are not kept:
        their learners send again)."""
        return {
            "format": CHECKPOINT_FORMAT, "version": self.version,
            "model": None if self.model is None else orjson.loads(encode_model(self.model)),
            "ledger": self.ledger.to_state(), "guard": self.guard.to_state(),
            "velocity": self.velocity, "learners": sorted(self.learners),
            "drift_quiet_until": self.drift_quiet_until, "rollbacks": self.rollbacks,
        }

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint format {state.get('format')!r} is not "
                             f"{CHECKPOINT_FORMAT}")
        model = state["model"]
        self.model = None if model is None else decode_model(orjson.dumps(model))
        self.ledger.restore(state["ledger"])
        self.guard.restore(state["guard"])
        velocity = state.get("velocity")
        self.velocity = None if velocity is None else np.asarray(velocity, dtype=float)
        self.learners = set(state.get("learners", []))
        self.drift_quiet_until = int(state.get("drift_quiet_until", 0))
        self.rollbacks = int(state.get("rollbacks", 0))
