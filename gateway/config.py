"""What a gateway is told: its id, partition, task, learner, sync cadence and cleaning rules;
and what a predictor is told (:class:`PredictorConfig`: the same task and cleaning rules).

The home of every gateway default (the ``gateway`` command reads its option defaults from
here). It imports nothing heavy, so every node process of the CLI can read it without numba or
river; the optimizer is named here and built by the gateway.

>>> config = GatewayConfig("gw-0")
>>> config.spec.features, config.spec.target, config.sync_every, config.optimizer
(('temperature', 'humidity', 'pressure'), 'power', 200, 'adagrad')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from broker.keyring import Keyring
from broker.messages import KINDS
from gateway.cleaning import CleaningConfig
from gateway.features import FeatureSpec
from gateway.partition import Partition
from learners.drift import check_detector
from learners.imbalance import ClassWeight, parse_class_weight, parse_threshold
from learners.model_admission import ModelBounds
from learners.personal import check_mode
from learners.steps import parse_lr

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
    #: optimizer's own default step; "auto": chosen online (:mod:`learners.steps`).
    optimizer: str = "adagrad"
    lr: float | str | None = None
    l2: float = 0.0
    clip: float = 3.0
    #: binary tasks: 'none', 'balanced' or '0:w0,1:w1'; and the decision threshold of the
    #: prequential accuracies, a probability or 'auto' (:mod:`learners.imbalance`)
    class_weight: str = "none"
    threshold: str = "0.5"
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
    #: Where to write the samples it learned at its stop (:mod:`gateway.sample_log`): for the
    #: baselines of `up --report`. None: kept nowhere.
    samples_log: Path | None = None
    #: Personal parts beside the global model (:mod:`learners.personal`): 'none', 'site' or
    #: 'device' (binary tasks too, mixed in log-odds).
    personalize: str = "site"
    #: Where the personal parts are checkpointed and resumed from on start
    #: (:mod:`gateway.personal_store`). None: nowhere (a restart begins them from scratch).
    state_dir: Path | None = None

    def __post_init__(self) -> None:
        check_detector(self.drift_detector)
        check_mode(self.personalize)
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        check_imbalance(self.kind, self.class_weight, self.threshold)
        if self.check_after < 0:
            raise ValueError("check after must be >= 0 readings")
        if self.sync_every < 1 or not self.sync_interval > 0:
            raise ValueError("sync every must be >= 1 and the sync interval > 0")
        parse_lr(self.lr)  # a number > 0, "auto" or None


def check_imbalance(kind: str, class_weight: str, threshold: str) -> None:
    """Class weights and a threshold must parse, and weights mean something only to binary
    tasks.

    >>> check_imbalance("regression", "balanced", "0.5")
    Traceback (most recent call last):
    ...
    ValueError: class weights are for binary tasks, not regression
    """
    if parse_class_weight(class_weight) != ClassWeight() and kind != "binary":
        raise ValueError(f"class weights are for binary tasks, not {kind}")
    parse_threshold(threshold)


#: What a stale model's predictions become: said so, or not sent.
STALE_POLICIES = ("mark", "drop")


@dataclass(frozen=True)
class PredictorConfig:
    node_id: str = "predictor"
    partition: Partition = field(default_factory=Partition)
    #: The task (the gateways'); None: the first adopted model's, cleaning from then on.
    spec: FeatureSpec | None = None
    kind: str | None = None  # the task's kind; None: the first adopted model's
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)  # the gateways' rules
    qos: int = 1  # of the readings' subscription and of the predictions published
    metrics_interval: float = 1.0
    keyring: Keyring | None = None  # with a trust file: only models an aggregator signed
    keys_interval: float = 1.0  # seconds between checks for a changed trust file
    model_bounds: ModelBounds = field(default_factory=ModelBounds)
    #: Seconds a model may be old (by its own ``ts``) and still be served fresh; None: any.
    max_model_age: float | None = None
    stale: str = "mark"

    def __post_init__(self) -> None:
        if self.stale not in STALE_POLICIES:
            raise ValueError(f"stale must be one of {', '.join(STALE_POLICIES)}")
        if self.max_model_age is not None and not self.max_model_age > 0:
            raise ValueError("the max model age must be > 0 seconds")
        if self.qos not in (0, 1):
            raise ValueError("qos must be 0 or 1")
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")

    @property
    def max_payload(self) -> int:
        return self.cleaning.max_payload
