"""`fleetlearn predict`: options -> :class:`~gateway.predictor.PredictorConfig` -> a served
predictor. It takes the gateway's task and cleaning options (and the ``[task]`` and
``[cleaning]`` sections of a config file): it cleans and builds features as the gateways do."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from broker.topics import check_id
from fleetlearn.commands import cleaning_options as clean
from fleetlearn.commands.common import (
    DEFAULT_BROKER,
    DEFAULT_PREFIX,
    EXPORTER_OWNERS,
    MODEL_OWNERS,
    BrokerOpt,
    GiveUpOpt,
    KindOpt,
    MagnitudeOpt,
    MetricsHostOpt,
    MetricsOpt,
    MetricsPortOpt,
    PasswordOpt,
    PrefixOpt,
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
    local_time,
    names,
    serve,
    topics,
)
from fleetlearn.commands.gateway import TASK, cleaning_config
from fleetlearn.commands.keys import SigningKeyOpt, TrustOpt, keyring
from fleetlearn.metrics.settings import ExporterConfig
from gateway.cleaning import ChannelPolicy, CleaningConfig
from gateway.config import GatewayConfig, PredictorConfig
from gateway.features import FeatureSpec
from gateway.local_time import LocalTime
from gateway.partition import Partition
from learners.model_admission import ModelBounds

P, C, CP = PredictorConfig, CleaningConfig, ChannelPolicy

#: Where each option's default lives (option -> dataclass, field); tests hold them equal.
OWNERS: dict[str, tuple[type, str]] = {
    **EXPORTER_OWNERS,
    "timezone": (LocalTime, "default"),
    "id": (P, "node_id"), "metrics_interval": (P, "metrics_interval"),
    "max_model_age": (P, "max_model_age"), "stale": (P, "stale"), "qos": (P, "qos"),
    "kind": (GatewayConfig, "kind"), "max_age": (C, "max_age"), "max_skew": (C, "max_skew"),
    "reorder_window": (C, "reorder_window"), "max_seq_jump": (C, "max_seq_jump"),
    "impute": (CP, "impute"), "impute_max_age": (CP, "max_age"), "outliers": (CP, "outliers"),
    "z": (CP, "z"), "smooth": (CP, "smooth"), **MODEL_OWNERS}


def predict(
    id: Annotated[str, typer.Option("--id", help="Node id.")] = default(P, "node_id"),
    partition: Annotated[str, typer.Option(help="Whose readings: 'all', 'sites:s0,s1', "
                                           "'devices:d1,d2' or 'bucket:I/K' (as a gateway's; "
                                           "several predictors share the readings).")] = "all",
    qos: Annotated[int, typer.Option(min=0, max=1, help="QoS of the readings' subscription "
                                     "and of the predictions.")] = default(P, "qos"),
    features: Annotated[str, typer.Option(help="Comma-separated features (the gateways').")
                        ] = ",".join(TASK.features),
    target: Annotated[str, typer.Option(help="Target channel.")] = TASK.target,
    timezone: TimezoneOpt = default(LocalTime, "default"),
    timezones: TimezonesOpt = None,
    kind: KindOpt = default(GatewayConfig, "kind"),
    allowlist: Annotated[Path | None, typer.Option(help="File of allowed device ids, one a "
                                                   "line (default: any device).")] = None,
    max_age: clean.MaxAgeOpt = default(C, "max_age"),
    max_skew: clean.MaxSkewOpt = default(C, "max_skew"),
    impute_max_age: clean.ImputeMaxAgeOpt = default(CP, "max_age"),
    reorder_window: clean.ReorderWindowOpt = default(C, "reorder_window"),
    max_seq_jump: clean.MaxSeqJumpOpt = default(C, "max_seq_jump"),
    impute: clean.ImputeOpt = default(CP, "impute"),
    outliers: clean.OutliersOpt = default(CP, "outliers"),
    z: clean.ZOpt = default(CP, "z"),
    smooth: clean.SmoothOpt = default(CP, "smooth"),
    broker: BrokerOpt = DEFAULT_BROKER,
    prefix: PrefixOpt = DEFAULT_PREFIX,
    metrics_interval: MetricsOpt = default(P, "metrics_interval"),
    max_model_age: Annotated[float | None, typer.Option(
        min=0.001, help="Seconds a model may be old (by its own time) and still be served "
        "fresh (default: any age).")] = default(P, "max_model_age"),
    stale: Annotated[Literal["mark", "drop"], typer.Option(
        help="A stale model's predictions: 'mark' them (\"stale\": true) or 'drop' them.")
                     ] = default(P, "stale"),
    max_version_jump: VersionJumpOpt = default(ModelBounds, "max_version_jump"),
    max_model_magnitude: MagnitudeOpt = default(ModelBounds, "max_magnitude"),
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
) -> None:
    """Predict every reading of a partition with the current model, from the features the
    gateways learn from; publish it with the model version."""
    from gateway.predictor import Predictor  # numba: the gateway's compiled cleaning

    keys = keyring(key, trust, id, None)
    try:
        config = PredictorConfig(
            node_id=check_id(id), metrics_interval=metrics_interval,
            partition=Partition.parse(partition), qos=qos,
            spec=FeatureSpec(names(features, "--features"), target,
                         local_time(timezone, timezones)), kind=kind,
            cleaning=cleaning_config(allowlist, max_age, max_skew, reorder_window,
                                     max_seq_jump, impute, impute_max_age, outliers, z, smooth),
            max_model_age=max_model_age,
            stale=stale, model_bounds=ModelBounds(max_version_jump, max_model_magnitude),
            keyring=keys)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    connection = address(broker, username, password, tls_ca, tls_cert, tls_key)
    serve(Predictor(config, topics(prefix), connection), give_up_after,
          ExporterConfig(metrics_port, metrics_host))
