"""A gateway's learner, as its config describes it: the model, its optimizer and class
weights, and with ``lr = "auto"`` the shadow learners of steps around the default.

>>> from gateway.features import FeatureSpec
>>> learner = learner_of(GatewayConfig(spec=FeatureSpec(("a",), "y"), lr="auto"))
>>> learner.steps is not None, learner_of(GatewayConfig(spec=FeatureSpec(("a",), "y"))).steps
(True, None)
>>> learner.learner.lr == learner.steps.start() < 0.3   # below the default until a choice
True
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.config import GatewayConfig
from learners.imbalance import parse_class_weight
from learners.linear import LinearModel
from learners.local import LocalLearner
from learners.optim import make_optimizer
from learners.steps import AUTO, StepSearch, auto_search


def model_of(config: GatewayConfig, lr: float | None) -> LinearModel:
    """A blank model as the config says, learning with step ``lr`` (None: the optimizer's)."""
    return LinearModel(config.spec.features, config.kind, make_optimizer(config.optimizer, lr),
                       config.l2, config.clip, parse_class_weight(config.class_weight))


def model_maker(config: GatewayConfig) -> Callable[[], LinearModel]:
    """Makes blank models with the config's step (``auto``: the optimizer's default)."""
    lr = None if config.lr == AUTO else config.lr
    return lambda: model_of(config, lr)


def learner_of(config: GatewayConfig) -> LocalLearner:
    """The gateway's learner; with ``lr = "auto"``, shadows of steps around the default."""
    if config.lr != AUTO:
        return LocalLearner(model_of(config, config.lr))
    return LocalLearner(model_of(config, None), step_search(config))


def step_search(config: GatewayConfig) -> StepSearch | None:
    """With ``lr = "auto"``, shadows of the steps around the optimizer's default (for the
    learner, and apart for the personal parts); None otherwise."""
    if config.lr != AUTO:
        return None
    return auto_search(model_of(config, None).lr, lambda lr: model_of(config, lr))
