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
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec

if TYPE_CHECKING:
    from learners.linear import LinearModel

G = GatewayConfig


@dataclass(frozen=True)
class EvaluateSettings:
    spec: FeatureSpec
    kind: str = G.kind
    optimizer: str = G.optimizer
    lr: float | None = G.lr
    l2: float = G.l2
    clip: float = G.clip
    sync_every: int = G.sync_every
    personalize: str = G.personalize
    gateways: int = UpSettings.gateways
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)

    def __post_init__(self) -> None:
        if self.gateways < 1 or self.sync_every < 1:
            raise ValueError("need gateways >= 1 and sync every >= 1")

    def model(self) -> LinearModel:
        """A blank learner as a gateway makes one."""
        from learners.linear import LinearModel
        from learners.optim import make_optimizer

        return LinearModel(self.spec.features, self.kind,
                           make_optimizer(self.optimizer, self.lr), self.l2, self.clip)
