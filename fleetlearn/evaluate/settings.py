"""What an evaluation is told: the task, the learner and the deployment's shape, as a gateway
and `up` take them (their defaults are theirs). Light: the CLI imports it without numba.

>>> from gateway.features import FeatureSpec
>>> s = EvaluateSettings(FeatureSpec(("a",), "y"))
>>> s.kind, s.sync_every, s.gateways, s.optimizer
('regression', 200, 2, 'adagrad')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fleetlearn.deploy.settings import UpSettings
from gateway.cleaning import CleaningConfig
from gateway.config import GatewayConfig, check_imbalance
from gateway.features import FeatureSpec

if TYPE_CHECKING:
    from learners.linear import LinearModel
    from learners.local import LocalLearner
    from learners.steps import StepSearch

G = GatewayConfig


@dataclass(frozen=True)
class EvaluateSettings:
    spec: FeatureSpec
    kind: str = G.kind
    optimizer: str = G.optimizer
    lr: float | str | None = G.lr  # "auto": chosen online (learners.steps)
    l2: float = G.l2
    clip: float = G.clip
    class_weight: str = G.class_weight
    threshold: str = G.threshold
    sync_every: int = G.sync_every
    personalize: str = G.personalize
    gateways: int = UpSettings.gateways
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)

    def __post_init__(self) -> None:
        if self.gateways < 1 or self.sync_every < 1:
            raise ValueError("need gateways >= 1 and sync every >= 1")
        check_imbalance(self.kind, self.class_weight, self.threshold)

    def model(self, lr: float | None = None) -> LinearModel:
        """A blank model as a gateway makes one (``lr``: this step, not the settings')."""
        from learners.imbalance import parse_class_weight
        from learners.linear import LinearModel
        from learners.optim import make_optimizer

        step = lr if lr is not None else (None if self.lr == "auto" else self.lr)
        return LinearModel(self.spec.features, self.kind,
                           make_optimizer(self.optimizer, step), self.l2, self.clip,
                           parse_class_weight(self.class_weight))

    def learner(self) -> LocalLearner:
        """A blank learner as a gateway makes one: with shadows when ``lr`` is "auto"."""
        from learners.local import LocalLearner

        return LocalLearner(self.model(), self.search())

    def search(self) -> StepSearch | None:
        """With ``lr = "auto"``, shadows of the steps around the optimizer's default (the
        learner's, and apart the personal parts'); None otherwise."""
        from learners.steps import auto_search

        return auto_search(self.model().lr, self.model) if self.lr == "auto" else None
