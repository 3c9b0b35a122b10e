"""What a gateway is told: its id, partition, task, learner, sync cadence and cleaning rules.

The home of every gateway default (the ``gateway`` command reads its option defaults from
here). It imports nothing heavy, so every node process of the CLI can read it without numba or
river; the optimizer is named here and built by the gateway.

>>> config = GatewayConfig("gw-0")
>>> config.spec.features, config.spec.target, config.sync_every, config.optimizer
(('temperature', 'humidity', 'pressure'), 'power', 200, 'adagrad')
"""

from __future__ import annotations

from dataclasses import dataclass, field

from broker.keyring import Keyring
from broker.messages import KINDS
from gateway.cleaning import CleaningConfig
from gateway.features import FeatureSpec
from gateway.partition import Partition
from learners.drift import check_detector
from learners.model_admission import ModelBounds

#: The task a gateway learns unless told: the simulated fleet's (``devices.truth``), so that
#: ``fleetlearn gateway`` and ``fleetlearn devices simulate`` work together with no options.
SIMULATED_TASK = FeatureSpec(("temperature", "humidity", "pressure"), "power")



@dataclass(frozen=True)
class GatewayConfig:
    node_id: str = "gw-0"
    spec: FeatureSpec = SIMULATED_TASK
    partition: Partition = field(default_factory=Partition)
    sync_every: int = 200
    sync_interval: float = 1.0
    metrics_interval: float = 1.0
    quality_interval: float = 10.0
    kind: str = "regression"
    #: 'adagrad', 'rmsprop' or 'sgd' (:func:`learners.optim.make_optimizer`); ``lr`` None: the
    #: optimizer's own default step.
    optimizer: str = "adagrad"
    lr: float | None = None
    l2: float = 0.0
    clip: float = 3.0
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    drift_detector: str = "adwin"
    #: signs every update; with a trust file, accepts only models an aggregator's key signed
    keyring: Keyring | None = None
    keys_interval: float = 1.0  # seconds between checks for a changed key or trust file
    #: Which models it adopts (:mod:`learners.model_admission`).
    model_bounds: ModelBounds = field(default_factory=ModelBounds)
    #: Readings after which it judges once whether the task fits the stream
    #: (:mod:`gateway.task_check`); one that does not stops it (exit code 4). 0: never.
    check_after: int = 200

    def __post_init__(self) -> None:
        check_detector(self.drift_detector)
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.check_after < 0:
            raise ValueError("check after must be >= 0 readings")
        if self.sync_every < 1 or not self.sync_interval > 0:
            raise ValueError("sync every must be >= 1 and the sync interval > 0")
