"""`fleetlearn gateway`: options -> :class:`~gateway.config.GatewayConfig` -> a served gateway.

The gateway's service module is imported when the command runs: only a gateway needs numba and
river (~180 MiB a node with them, ~55 MiB without).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from broker.topics import check_id
from fleetlearn.commands import cleaning_options as clean
from fleetlearn.commands.common import (
    DEFAULT_BROKER,
    DEFAULT_PREFIX,
    EXPORTER_OWNERS,
    MODEL_OWNERS,
    BrokerOpt,
    ClassWeightOpt,
    GiveUpOpt,
    KindOpt,
    LrOpt,
    MagnitudeOpt,
    MetricsHostOpt,
    MetricsOpt,
    MetricsPortOpt,
    OptimizerOpt,
    PasswordOpt,
    PersonalizeOpt,
    PrefixOpt,
    ThresholdOpt,
    TimezoneOpt,
    TimezonesOpt,
    TlsCaOpt,
    TlsCertOpt,
    TlsKeyOpt,
    UsageProblem,
    UserOpt,
    VersionJumpOpt,
    address,
    default,
    default_state_dir,
    local_time,
    names,
    no_limit,
    read_allowlist,
    serve,
    topics,
)
from fleetlearn.commands.keys import SigningKeyOpt, TrustOpt, keyring
from fleetlearn.metrics.settings import ExporterConfig
from gateway.cleaning import ChannelPolicy, CleaningConfig
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from gateway.local_time import LocalTime
from gateway.partition import Partition
from gateway.task_check import TaskUnfit
from learners.model_admission import ModelBounds

G, C, P = GatewayConfig, CleaningConfig, ChannelPolicy
TASK = default(G, "spec")

#: Where each option's default lives (option -> dataclass, field); tests hold them equal.
OWNERS: dict[str, tuple[type, str]] = {
    **EXPORTER_OWNERS,
    "timezone": (LocalTime, "default"),
    "id": (G, "node_id"), "samples_log": (G, "samples_log"),
    "sync_every": (G, "sync_every"),
    "sync_interval": (G, "sync_interval"), "kind": (G, "kind"), "optimizer": (G, "optimizer"),
    "lr": (G, "lr"), "l2": (G, "l2"), "clip": (G, "clip"),
    "class_weight": (G, "class_weight"), "threshold": (G, "threshold"),
    "drift_detector": (G, "drift_detector"), "personalize": (G, "personalize"),
    "metrics_interval": (G, "metrics_interval"),
    "quality_interval": (G, "quality_interval"), "max_age": (C, "max_age"),
    "max_skew": (C, "max_skew"), "reorder_window": (C, "reorder_window"),
    "impute": (P, "impute"), "impute_max_age": (P, "max_age"), "outliers": (P, "outliers"),
    "z": (P, "z"), "smooth": (P, "smooth"), "max_seq_jump": (C, "max_seq_jump"),
    "check_after": (G, "check_after"),
    **MODEL_OWNERS,
}


def cleaning_config(allowlist: Path | None, max_age: float, max_skew: float,
                    reorder_window: int, max_seq_jump: int, impute: str, impute_max_age: float,
                    outliers: str, z: float, smooth: float | None) -> CleaningConfig:
    """The cleaning options as a gateway (and a predictor, which must clean alike) takes them."""
    return CleaningConfig(
        allowlist=read_allowlist(allowlist) if allowlist else None,
        max_age=no_limit(max_age), max_skew=no_limit(max_skew),
        reorder_window=reorder_window, max_seq_jump=max_seq_jump,
        policy=ChannelPolicy(impute=impute, max_age=no_limit(impute_max_age),
                             outliers=outliers, z=z, smooth=smooth))


def gateway(
    id: Annotated[str, typer.Option("--id", help="Node id of this gateway.")
                  ] = default(G, "node_id"),
    partition: Annotated[str, typer.Option(help="'all', 'sites:s0,s1', 'devices:d1,d2' or "
                                           "'bucket:I/K'.")] = "all",
    features: Annotated[str, typer.Option(help="Comma-separated feature channels.")
                        ] = ",".join(TASK.features),
    target: Annotated[str, typer.Option(help="Target channel.")] = TASK.target,
    timezone: TimezoneOpt = default(LocalTime, "default"),
    timezones: TimezonesOpt = None,
    kind: KindOpt = default(G, "kind"),
    check_after: Annotated[int, typer.Option(min=0, help="Readings after which it judges once "
                                             "whether the task fits the stream: a channel in "
                                             "none of them, or a binary target never 0 or 1, "
                                             "stops it with exit code 4 (0: never).")
                           ] = default(G, "check_after"),
    sync_every: Annotated[int, typer.Option(min=1, help="Samples between updates.")
                          ] = default(G, "sync_every"),
    sync_interval: Annotated[float, typer.Option(min=0.01, help="Max seconds between updates."
                                                 )] = default(G, "sync_interval"),
    optimizer: OptimizerOpt = default(G, "optimizer"),
    lr: LrOpt = default(G, "lr"),
    l2: Annotated[float, typer.Option(min=0.0, help="L2 penalty on standardised weights.")
                  ] = default(G, "l2"),
    clip: Annotated[float, typer.Option(min=1e-6, help="Clip of the standardised error.")
                    ] = default(G, "clip"),
    class_weight: ClassWeightOpt = default(G, "class_weight"),
    threshold: ThresholdOpt = default(G, "threshold"),
    allowlist: Annotated[Path | None, typer.Option(help="File of allowed device ids, one a "
                                                   "line (default: any device).")] = None,
    max_age: clean.MaxAgeOpt = default(C, "max_age"),
    max_skew: clean.MaxSkewOpt = default(C, "max_skew"),
    impute_max_age: clean.ImputeMaxAgeOpt = default(P, "max_age"),
    reorder_window: clean.ReorderWindowOpt = default(C, "reorder_window"),
    max_seq_jump: clean.MaxSeqJumpOpt = default(C, "max_seq_jump"),
    max_version_jump: VersionJumpOpt = default(ModelBounds, "max_version_jump"),
    max_model_magnitude: MagnitudeOpt = default(ModelBounds, "max_magnitude"),
    impute: clean.ImputeOpt = default(P, "impute"),
    outliers: clean.OutliersOpt = default(P, "outliers"),
    z: clean.ZOpt = default(P, "z"),
    smooth: clean.SmoothOpt = default(P, "smooth"),
    personalize: PersonalizeOpt = default(G, "personalize"),
    drift_detector: Annotated[str, typer.Option(help="Watches the prequential error for a "
                                                "rise: 'adwin' or 'page-hinkley'.")
                              ] = default(G, "drift_detector"),
    broker: BrokerOpt = DEFAULT_BROKER,
    prefix: PrefixOpt = DEFAULT_PREFIX,
    metrics_interval: MetricsOpt = default(G, "metrics_interval"),
    quality_interval: Annotated[float, typer.Option(min=0.05, help="Seconds between per-device "
                                                    "data-quality summaries.")
                                ] = default(G, "quality_interval"),
    username: UserOpt = None,
    password: PasswordOpt = None,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    give_up_after: GiveUpOpt = None,
    metrics_port: MetricsPortOpt = default(ExporterConfig, "port"),
    metrics_host: MetricsHostOpt = default(ExporterConfig, "host"),
    key: SigningKeyOpt = None,
    trust: TrustOpt = None,
    samples_log: Annotated[Path | None, typer.Option(help="At the stop, write the samples "
                                                     "learned (features, target, device, "
                                                     "prediction) to this .npz file: what "
                                                     "`up` compares with its baselines.")
                           ] = default(G, "samples_log"),
    state_dir: Annotated[Path | None, typer.Option(help="Where the personal parts are "
                                                   "checkpointed and resumed from at a "
                                                   "restart (default: ~/.local/state/"
                                                   "fleetlearn/HOST_PORT/PREFIX/ID).")
                         ] = None,
    checkpoints: Annotated[bool, typer.Option(help="Checkpoint the personal parts (every "
                                              "10 s while they learn, and at the stop).")
                           ] = True,
) -> None:
    """Clean the readings of a partition and learn from them; sync with the aggregator."""
    from gateway.service import Gateway  # numba and river: gateways only

    try:
        check_id(id, "gateway id")
        cleaning = cleaning_config(allowlist, max_age, max_skew, reorder_window, max_seq_jump,
                                   impute, impute_max_age, outliers, z, smooth)
        config = GatewayConfig(
            node_id=id, partition=Partition.parse(partition),
            spec=FeatureSpec(names(features, "--features"), target,
                         local_time(timezone, timezones)), kind=kind,
            optimizer=optimizer, lr=lr, l2=l2, clip=clip, class_weight=class_weight,
            threshold=threshold, sync_every=sync_every, sync_interval=sync_interval,
            metrics_interval=metrics_interval, quality_interval=quality_interval,
            cleaning=cleaning, drift_detector=drift_detector, personalize=personalize,
            keyring=keyring(key, trust, id, "gateway"),
            model_bounds=ModelBounds(max_version_jump, max_model_magnitude),
            check_after=check_after, samples_log=samples_log,
        )
        connection = address(broker, username, password, tls_ca, tls_cert, tls_key)
        if checkpoints:
            config = replace(config, state_dir=state_dir or default_state_dir(
                prefix, id, connection))
        service = Gateway(config, topics(prefix), connection)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    serve(service, give_up_after, ExporterConfig(metrics_port, metrics_host))
    if service.task_problem is not None:  # said once in its log (an ERROR); and exit code 4
        raise TaskUnfit(service.task_problem)
