"""`fleetlearn predict`: options -> :class:`~gateway.predictor.PredictorConfig` -> a served
predictor."""

from __future__ import annotations

from typing import Annotated

import typer

from broker.topics import check_id
from fleetlearn.commands.common import (
    DEFAULT_BROKER,
    DEFAULT_PREFIX,
    BrokerOpt,
    GiveUpOpt,
    MetricsOpt,
    PasswordOpt,
    PrefixOpt,
    TlsCaOpt,
    TlsCertOpt,
    TlsKeyOpt,
    UserOpt,
    address,
    default,
    serve,
    topics,
)
from gateway.predictor import Predictor, PredictorConfig

P = PredictorConfig

#: Where each option's default lives (option -> dataclass, field); tests hold them equal.
OWNERS: dict[str, tuple[type, str]] = {"id": (P, "node_id"),
                                       "metrics_interval": (P, "metrics_interval")}


def predict(
    sites: Annotated[str, typer.Option(help="Comma-separated sites (default: all).")] = "",
    id: Annotated[str, typer.Option("--id", help="Node id.")] = default(P, "node_id"),
    broker: BrokerOpt = DEFAULT_BROKER,
    prefix: PrefixOpt = DEFAULT_PREFIX,
    metrics_interval: MetricsOpt = default(P, "metrics_interval"),
    username: UserOpt = None,
    password: PasswordOpt = None,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    give_up_after: GiveUpOpt = None,
) -> None:
    """Predict every reading with the current model; publish it with the model version."""
    config = PredictorConfig(node_id=check_id(id), metrics_interval=metrics_interval,
                             sites=tuple(s for s in sites.split(",") if s))
    connection = address(broker, username, password, tls_ca, tls_cert, tls_key)
    serve(Predictor(config, topics(prefix), connection), give_up_after)
