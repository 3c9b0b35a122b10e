"""Which broadcast models a gateway or predictor takes: pure, one call per model.

Authenticity is the signature's business; this is the hygiene that holds without keys, so one
bad model (forged, replayed, or from another deployment) does no lasting harm. A model is
refused, with a reason, when

- its version is not above the current one (``model_old``; the same version again, as after
  every reconnect when the retained model comes back, is :data:`SAME`: ignored, not refused);
- its version is more than ``max_version_jump`` above the current one (``model_version_jump``).
  Such a model is *held*: a later model that continues from it (above it by at most the bound)
  is taken, as a node back from a long absence sees them. One forged model with version 10**6
  or 2**63 - 1 is never adopted, and the real aggregator's next model (below it, within the
  bound of the current one) is;
- its task differs from the node's (``model_features``, ``model_target``, ``model_kind``): the
  gateway's is configured; a predictor's is the first model's it adopts;
- its numbers are out of range (``model_out_of_range``): a weight, the intercept or a mean
  beyond ``max_magnitude`` in absolute value, a variance beyond its square, a negative count,
  or a version beyond int64 (the codec already refuses non-finite numbers).

A node's first model (it has none: it just started) has nothing to be measured against: it is
taken whatever its version (task and numbers checked), but only *provisionally*: until a model
follows it (above it, within the bound), a model with a lower version replaces it instead of
being refused as old. So a node that starts while a forged model is retained takes it for one
round, and then the aggregator's next model; and nodes that all start late against a
long-running aggregator (versions far above the bound) take its retained model at once, so
their updates are on its version and the rounds go on (holding it would leave a fleet of
restarted gateways sending only stale updates, and no model would ever follow).

>>> from broker.messages import LinearParams, Model, Scaler
>>> def model(version, w=1.0, features=("a",)):
...     params = LinearParams(features, np.full(len(features), w), 0.0)
...     return Model(version, 0.0, 1, (), "y", params, Scaler.empty(len(features) + 1))
>>> gate = ModelAdmission(ModelBounds(max_version_jump=100), Task(("a",), "y", "regression"))
>>> gate.judge(model(5)) is None
True
>>> gate.adopted(model(5)); gate.adopted(model(6))   # the first, then one that follows it
>>> gate.judge(model(6)) is SAME, gate.judge(model(4)).reason
(True, 'model_old')
>>> gate.judge(model(1_000_000, w=1e6)).reason, gate.judge(model(7)) is None
('model_version_jump', True)
>>> gate.judge(model(7, features=("b",))).reason, gate.judge(model(7, w=1e300)).reason
('model_features', 'model_out_of_range')
>>> gate.judge(model(900)).reason, gate.judge(model(901)) is None   # held, then confirmed
('model_version_jump', True)
>>> late = ModelAdmission(ModelBounds(max_version_jump=100))
>>> late.judge(model(10**6)) is None                  # a first model: taken, provisionally
True
>>> late.adopted(model(10**6)); late.judge(model(5000)) is None   # replaced by a lower one
True
>>> late.adopted(model(5000)); late.adopted(model(5001)); late.judge(model(4000)).reason
'model_old'
>>> signed = ModelAdmission(ModelBounds()); signed.adopted(model(7))
>>> signed.judge(model(6)) is None, signed.judge(model(6), signed=True).reason
(True, 'model_replayed')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from broker.messages import Model

INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class ModelBounds:
    """How far a model may move a node at once: the home of these options' defaults."""

    #: Versions a model may be above the current one (0: no bound). The aggregator makes a few
    #: models a second; a larger jump is held until a model continues from it.
    max_version_jump: int = 10_000
    #: The largest absolute weight, intercept or feature mean a model may carry (in raw units).
    max_magnitude: float = 1e9

    def __post_init__(self) -> None:
        if self.max_version_jump < 0 or not self.max_magnitude > 0:
            raise ValueError("the version jump must be >= 0 (0: none) and the magnitude > 0")


class Task(NamedTuple):
    """What is learned: the features, the target and the kind of model."""

    features: tuple[str, ...]
    target: str
    kind: str


class Refusal(NamedTuple):
    reason: str
    detail: str


#: The current version again (a reconnect brings the retained model back): nothing to do.
SAME = Refusal("model_same", "the current version again")


def out_of_range(model: Model, bound: float) -> str | None:
    """What in a model is beyond ``bound`` (or impossible), if anything.

    >>> from broker.messages import LinearParams, Scaler
    >>> m = Model(1, 0.0, 1, (), "y", LinearParams(("a",), np.array([2e9]), 0.0),
    ...           Scaler.empty(2))
    >>> out_of_range(m, 1e9)
    'a weight or the intercept beyond 1e+09'
    """
    p, s = model.params, model.scaler
    if model.version > INT64_MAX or not 0 <= model.n <= INT64_MAX:
        return "a version or count beyond int64"
    if np.any(np.abs(p.weights) > bound) or not abs(p.intercept) <= bound:
        return f"a weight or the intercept beyond {bound:g}"
    if not 0 <= s.count <= INT64_MAX or np.any(np.abs(s.mean) > bound):
        return f"a negative count or a mean beyond {bound:g}"
    if s.count and np.any(s.m2 / s.count > bound * bound):
        return f"a variance beyond {bound:g} squared"
    return None


class ModelAdmission:
    """A node's judge of models: the current version, the task, a held jump."""

    def __init__(self, bounds: ModelBounds, task: Task | None = None) -> None:
        self.bounds = bounds
        self.task = task  # None: the first adopted model's
        self.current = 0
        self.provisional = True  # no model has followed the current one yet
        self.held: int | None = None  # the last version refused as a jump

    def judge(self, model: Model, signed: bool = False) -> Refusal | None:
        """None when ``model`` may be adopted; :data:`SAME`, or why it is refused. ``signed``:
        its aggregator's signature was verified, so a lower version is an older genuine model
        sent again (``model_replayed``), never a replacement for a provisional one."""
        version = model.version
        if version == self.current:
            return SAME
        if version < self.current and signed:
            return Refusal("model_replayed", f"v{version} after v{self.current}")
        if version < self.current and not self.provisional:
            return Refusal("model_old", f"v{version}, we have v{self.current}")
        task = self.task
        if task is not None:
            if model.params.features != task.features:
                return Refusal("model_features", f"model has {list(model.params.features)}, "
                                                 f"we learn {list(task.features)}")
            if model.target != task.target:
                return Refusal("model_target", f"model predicts {model.target}, we "
                                               f"{task.target}")
            if model.kind != task.kind:
                return Refusal("model_kind", f"model is {model.kind}, we learn {task.kind}")
        why = out_of_range(model, self.bounds.max_magnitude)
        if why is not None:
            return Refusal("model_out_of_range", why)
        bound = self.bounds.max_version_jump or math.inf
        held = self.held
        if self.current == 0 or version < self.current:  # a first model, or provisional
            return None
        if version - self.current > bound and not (held is not None
                                                   and held < version <= held + bound):
            self.held = version
            return Refusal("model_version_jump", f"v{version}, more than {bound} above "
                                                 f"v{self.current}: held until one follows it")
        return None

    def adopted(self, model: Model) -> None:
        """The node took ``model``: its version is current, its task the node's from now."""
        # provisional while nothing has followed: a first model, or one that replaced it
        self.provisional = self.current == 0 or (self.provisional
                                                 and model.version < self.current)
        self.current = model.version
        self.held = None
        if self.task is None:
            self.task = Task(model.params.features, model.target, model.kind)
