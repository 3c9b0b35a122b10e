"""Update hygiene: which learner updates may touch the model, and what each one adds.

Pure bookkeeping (no clock, no transport). Every update is either refused with a reason that is
counted and dead-lettered, or becomes a :class:`Contribution`: the learner's change to the model
it started from, with the samples and moments that no earlier model counted.

Reasons (besides the codec's decode reasons):

- ``id_mismatch``: the learner id is not the one in the update's topic;
- ``replayed``: a ``seq`` this learner already used (QoS 1 redelivers: never apply twice);
- ``seq_jump``: a ``seq`` more than ``max_seq_jump`` beyond the learner's mark (one forged
  update with seq 2**62 would otherwise make every later real update ``replayed``); the mark
  does not move, so a checkpoint never keeps it. A learner's first update has no mark: its
  seq may not pass the caller's ``ceiling`` (a gateway's seq is its microsecond clock at start
  plus one an update, so the aggregator's clock in µs plus ``max_seq_jump``);
- ``wrong_features`` / ``wrong_task``: other features, or another target or kind, than the model;
- ``bad_count``: ``n`` <= 0, or above ``max_samples``;
- ``too_many_samples``: an ``n`` above the caller's ``limit`` (what the learner can have seen
  since it was last heard, :class:`learners.admission.SampleBudget`);
- ``stale``: built on a version more than ``max_staleness`` behind (or one no longer known);
- ``future_version``: built on a version this aggregator has not made;
- ``no_new_samples``: nothing beyond what an applied update of the same base already gave.

An update sent on the same base version as one already applied (asynchronous strategies merge
before the learner has adopted the result) contributes only what is new: its change over the
applied one, its samples beyond them, and the moments left when the applied ones are taken out.

>>> from broker.messages import LinearParams, Scaler, Update
>>> book = UpdateLedger(max_staleness=0)
>>> u = Update("gw-0", 1, 0, 10, "y", LinearParams(("x",), np.array([2.0]), 1.0), 0.0,
...            Scaler(10, np.zeros(2), np.ones(2)))
>>> c = book.check(u, "gw-0")
>>> c.delta.tolist(), c.n, c.staleness
([2.0, 1.0], 10, 0)
>>> book.check(u, "gw-0").reason
'replayed'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from broker.messages import Model, Scaler, Update
from learners.aggregate import as_vector

DEFAULT_MAX_SAMPLES = 1_000_000
#: How far an update's seq may run ahead of the learner's last used one. A gateway's seq is its
#: microsecond clock at start plus one an update, so this lets a gateway come back after about
#: 116 days away; 2**62 stays far outside.
DEFAULT_MAX_SEQ_JUMP = 10**13


@dataclass(frozen=True)
class Refusal:
    """Why an update may not touch the model."""

    reason: str
    detail: str


def zones(local_time: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """A local time as compared: its default zone and the zones by site or device (an empty
    one is UTC, as a gateway from before model format 1.1 sends it).

    >>> zones({}) == zones({"default": "UTC", "zones": {}})
    True
    >>> zones({"default": "+05:00", "zones": {"s1": "Asia/Tokyo"}})
    ('+05:00', {'s1': 'Asia/Tokyo'})
    """
    return local_time.get("default") or "UTC", dict(local_time.get("zones") or {})


def task_text(features: tuple[str, ...] | None, target: str | None, kind: str | None,
              local_time: dict[str, Any] | None) -> str:
    """A task in words, for the line that says two tasks differ.

    >>> task_text(("temp", "hum"), "power", "regression", {"default": "+05:00"})
    "features ['temp', 'hum'] target power (regression, local time +05:00)"
    """
    zone, by = zones(local_time or {})
    where = zone + "".join(f", {k} {v}" for k, v in sorted(by.items()))
    return f"features {list(features or ())} target {target} ({kind}, local time {where})"


def update_task(update: Update) -> str:
    """The task an update learns, in words (:func:`task_text`)."""
    return task_text(update.params.features, update.target, update.kind, update.local_time)


@dataclass(frozen=True)
class Contribution:
    """What one accepted update adds to the model."""

    learner: str
    seq: int
    base_version: int
    staleness: int
    n: int
    delta: np.ndarray  # change over the params it is measured from, raw units
    params: np.ndarray  # the learner's whole parameter vector
    scaler: Scaler  # moments of the samples no model counted yet
    drift: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    source: Update | None = None  # the update as sent (what an applied mark remembers)


@dataclass
class AppliedMark:
    """The last update of a learner that went into a model."""

    base_version: int
    n: int
    params: np.ndarray
    scaler: Scaler


@dataclass
class UpdateLedger:
    """Checks updates against the current model and remembers what each learner gave."""

    max_staleness: int = 0
    max_samples: int = DEFAULT_MAX_SAMPLES
    max_seq_jump: int = DEFAULT_MAX_SEQ_JUMP
    version: int = 0
    features: tuple[str, ...] | None = None
    kind: str | None = None
    target: str | None = None
    local_time: dict[str, Any] | None = None  # the hour/day features' zones; {}: UTC
    history: dict[int, np.ndarray] = field(default_factory=dict)  # version -> params vector
    last_seq: dict[str, int] = field(default_factory=dict)
    applied: dict[str, AppliedMark] = field(default_factory=dict)

    def check(self, update: Update, topic_learner: str, limit: float = float("inf"),
              ceiling: int | None = None) -> Contribution | Refusal:
        """The update's contribution, or why it is refused (a refused seq stays unused).
        ``limit``: the largest ``n`` it may claim now; ``ceiling``: the largest first seq."""
        if update.learner != topic_learner:
            return Refusal("id_mismatch", f"learner {update.learner!r} on the topic of "
                           f"{topic_learner!r}")
        mark = self.last_seq.get(update.learner)
        if mark is not None and update.seq <= mark:
            return Refusal("replayed", f"seq {update.seq} of {update.learner} was used already")
        if mark is not None and update.seq - mark > self.max_seq_jump:
            return Refusal("seq_jump", f"seq {update.seq} of {update.learner} is more than "
                           f"{self.max_seq_jump} beyond its last {mark}")
        if mark is None and ceiling is not None and update.seq > ceiling:
            return Refusal("seq_jump", f"first seq {update.seq} of {update.learner} is beyond "
                           f"{ceiling} (the clock in µs plus {self.max_seq_jump})")
        task = self.task_problem(update)
        if task is not None:
            return task
        if not 0 < update.n <= self.max_samples:
            return Refusal("bad_count", f"n {update.n} is outside 1..{self.max_samples}")
        tau = self.version - update.base_version
        if tau < 0:
            return Refusal("future_version", f"base_version {update.base_version}, "
                           f"current {self.version}")
        if update.n > limit:
            return Refusal("too_many_samples", f"n {update.n} is more than the {limit:.0f} "
                           f"{update.learner} can have seen since it was last heard")
        contribution = self._contribution(update, tau)
        if isinstance(contribution, Contribution):
            self.last_seq[update.learner] = update.seq
            self.fix_task(update.params.features, update.kind, update.target,
                          update.local_time)
        return contribution

    def task_problem(self, update: Update) -> Refusal | None:
        """Why the update learns another task than the model's (features, target, kind, the
        local time of its hour and day features)."""
        if self.features is not None and update.params.features != self.features:
            return Refusal("wrong_features", f"update has {list(update.params.features)}, "
                           f"the model {list(self.features)}")
        if ((self.kind is not None and update.kind != self.kind)
                or (self.target is not None and update.target != self.target)):
            return Refusal("wrong_task", f"update learns {update.kind} {update.target!r}, the "
                           f"model {self.kind} {self.target!r}")
        if self.local_time is not None and zones(update.local_time) != zones(self.local_time):
            return Refusal("wrong_task", f"update's local time is {zones(update.local_time)}, "
                           f"the model's {zones(self.local_time)}")
        return None

    def _contribution(self, update: Update, tau: int) -> Contribution | Refusal:
        if tau > self.max_staleness:
            return Refusal("stale", f"base_version {update.base_version} is {tau} behind "
                           f"{self.version} (max_staleness {self.max_staleness})")
        params = as_vector(update.params)
        mark = self.applied.get(update.learner)
        n, scaler = update.n, update.scaler
        if mark is not None and mark.base_version == update.base_version:
            n -= mark.n
            if n <= 0:
                return Refusal("no_new_samples", f"n {update.n} does not go beyond the "
                               f"{mark.n} already applied from base {update.base_version}")
            try:
                scaler = update.scaler - mark.scaler
            except ValueError as exc:
                return Refusal("bad_count", str(exc))
            reference = mark.params
        else:
            reference = self.reference(update.base_version, len(params))
            if reference is None:
                return Refusal("stale", f"base_version {update.base_version} is no longer "
                               "known here")
        return Contribution(update.learner, update.seq, update.base_version, tau, n,
                            params - reference, params, scaler, update.drift, update.metrics,
                            update)

    def reference(self, version: int, size: int) -> np.ndarray | None:
        """The parameters of model ``version`` (zeros for version 0, before any model)."""
        if version == 0 and version not in self.history:
            return np.zeros(size)
        return self.history.get(version)

    def current(self, size: int) -> np.ndarray:
        ref = self.reference(self.version, size)
        return np.zeros(size) if ref is None else ref

    def task(self) -> str:
        """The task the model learns, in words (:func:`task_text`)."""
        return task_text(self.features, self.target, self.kind, self.local_time)

    def fix_task(self, features: tuple[str, ...], kind: str, target: str,
                 local_time: dict[str, Any] | None = None) -> None:
        """From the first accepted update (or model) on, every update must learn this task."""
        if self.features is None:
            self.features, self.kind, self.target = features, kind, target
        if self.local_time is None:  # also after a checkpoint from before local time
            self.local_time = dict(local_time or {})

    def record(self, model: Model, merged: list[Contribution]) -> None:
        """A model was made from ``merged``: remember its params and what each learner gave."""
        for c in merged:
            u = c.source
            if u is None:
                continue
            self.applied[c.learner] = AppliedMark(u.base_version, u.n, as_vector(u.params),
                                                  u.scaler)
        self.adopt(model, keep_history=True)

    def adopt(self, model: Model, keep_history: bool = False) -> None:
        """Go on from ``model`` (ours, a restored one, or a newer retained one): its task is
        the task from now on."""
        self.features, self.kind, self.target = model.params.features, model.kind, model.target
        self.local_time = dict(model.local_time)
        if not keep_history:
            self.history.clear()
        self.version = model.version
        self.history[model.version] = as_vector(model.params)
        for v in [v for v in self.history if v < self.version - self.max_staleness]:
            del self.history[v]

    def forget_marks_beyond(self, ceiling: int) -> list[str]:
        """Drop the seq marks no real learner can have reached by now (a checkpoint written
        before ``seq_jump`` existed may keep a forged one); the learners whose mark went."""
        gone = [k for k, seq in self.last_seq.items() if seq > ceiling]
        for k in gone:
            del self.last_seq[k]
        return gone

    # ---------------------------------------------------------------- checkpoints

    def to_state(self) -> dict[str, Any]:
        return {
            "version": self.version, "features": self.features, "kind": self.kind,
            "target": self.target, "local_time": self.local_time, "last_seq": self.last_seq,
            "history": {str(v): p for v, p in self.history.items()},
            "applied": {k: {"base_version": m.base_version, "n": m.n, "params": m.params,
                            "scaler": {"count": m.scaler.count, "mean": m.scaler.mean,
                                       "m2": m.scaler.m2}}
                        for k, m in self.applied.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.version = int(state["version"])
        self.features = tuple(state["features"]) if state["features"] is not None else None
        self.kind, self.target = state["kind"], state["target"]
        self.local_time = state.get("local_time")  # None in a checkpoint from before 1.1
        self.last_seq = {k: int(v) for k, v in state["last_seq"].items()}
        self.history = {int(v): np.asarray(p, dtype=float) for v, p in state["history"].items()}
        self.applied = {
            k: AppliedMark(int(m["base_version"]), int(m["n"]), np.asarray(m["params"], float),
                           Scaler(int(m["scaler"]["count"]),
                                  np.asarray(m["scaler"]["mean"], float),
                                  np.asarray(m["scaler"]["m2"], float)))
            for k, m in state["applied"].items()}
