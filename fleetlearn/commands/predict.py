"""`fleetlearn predict`: options -> :class:`~gateway.predictor.PredictorConfig` -> a served
predictor."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from broker.topics import check_id
from fleetlearn.commands.common import (
    DEFAULT_BROKER,
    DEFAULT_PREFIX,
    MODEL_OWNERS,
    BrokerOpt,
    GiveUpOpt,
    MagnitudeOpt,
    MetricsOpt,
    PasswordOpt,
    PrefixOpt,
    TlsCaOpt,
    TlsCertOpt,
    TlsKeyOpt,
    UsageProblem,
    UserOpt,
    VersionJumpOpt,
    address,
    default,
    serve,
    topics,
)
from fleetlearn.commands.keys import SigningKeyOpt, TrustOpt, keyring
from gateway.predictor import Predictor, PredictorConfig
from learners.model_admission import ModelBounds

P = PredictorConfig

#: Where each option's default lives (option -> dataclass, field); tests hold them equal.
OWNERS: dict[str, tuple[type, str]] = {"id": (P, "node_id"),
                                       "metrics_interval": (P, "metrics_interval"),
                                       "max_model_age": (P, "max_model_age"),
                                       "stale": (P, "stale"), **MODEL_OWNERS}


def predict(
    sites: Annotated[str, typer.Option(help="Comma-separated sites (default: all).")] = "",
    id: Annotated[str, typer.Option("--id", help="Node id.")] = default(P, "node_id"),
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
    key: SigningKeyOpt = None,
    trust: TrustOpt = None,
) -> None:
    """Predict every reading with the current model; publish it with the model version."""
    keys = keyring(key, trust, id, None)
    try:
        config = PredictorConfig(
            node_id=check_id(id), metrics_interval=metrics_interval,
            sites=tuple(s for s in sites.split(",") if s), max_model_age=max_model_age,
            stale=stale, model_bounds=ModelBounds(max_version_jump, max_model_magnitude),
            keyring=keys)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    connection = address(broker, username, password, tls_ca, tls_cert, tls_key)
    serve(Predictor(config, topics(prefix), connection), give_up_after)
