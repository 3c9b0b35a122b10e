"""`fleetlearn dashboard`: the live page of a running deployment (what `up --dashboard PORT`
serves for its own), from a monitor subscribed to the deployment's topics."""

from __future__ import annotations

from typing import Annotated

import typer

from fleetlearn.commands.common import (
    DEFAULT_BROKER,
    DEFAULT_PREFIX,
    BrokerOpt,
    GiveUpOpt,
    PasswordOpt,
    PrefixOpt,
    TlsCaOpt,
    TlsCertOpt,
    TlsKeyOpt,
    UserOpt,
    address,
    default,
    topics,
)
from fleetlearn.commands.keys import TrustOpt, keyring
from fleetlearn.dashboard.settings import DashboardSettings

D = DashboardSettings

#: Where each option's default lives (option -> dataclass, field); tests hold them equal.
OWNERS: dict[str, tuple[type, str]] = {"port": (D, "port")}


def dashboard(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Serve the page on "
                                      "http://127.0.0.1:PORT/ (loopback only).")
                    ] = default(D, "port"),
    broker: BrokerOpt = DEFAULT_BROKER,
    prefix: PrefixOpt = DEFAULT_PREFIX,
    username: UserOpt = None,
    password: PasswordOpt = None,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    give_up_after: GiveUpOpt = None,
    trust: TrustOpt = None,
) -> None:
    """Serve a live page of a running deployment: model version and age, prequential error
    curves per gateway, each node online or offline, rates of readings, rejections and
    predictions, the last dead letters; it updates every second, until Ctrl-C."""
    from fleetlearn.dashboard.watch import watch  # the server (aiohttp) only when it runs

    keys = keyring(None, trust, "dashboard", None)
    connection = address(broker, username, password, tls_ca, tls_cert, tls_key)
    watch(topics(prefix), connection, port, give_up_after, keys, say=typer.echo)
