"""`fleetlearn broker`: a Mosquitto of fleetlearn's own until Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import Annotated

import typer

from broker.address import BrokerAddress
from broker.mosquitto import MosquittoBroker
from fleetlearn.commands.common import default


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def broker(
    port: Annotated[int, typer.Option(help="Port to listen on (0: a free one).",
                                      min=0, max=65535)] = default(BrokerAddress, "port"),
    data_dir: Annotated[Path | None, typer.Option(help="Data and log dir (default: a temp dir).")
                        ] = None,
) -> None:
    """Run a Mosquitto broker for fleetlearn on 127.0.0.1 until Ctrl-C."""
    mosquitto = MosquittoBroker(port=port or None, data_dir=data_dir)
    # SIGTERM unwinds like Ctrl-C, so the broker we started is stopped with us.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    # a SIGTERM may come as soon as the line is out: the print is inside the suppression too
    with mosquitto, contextlib.suppress(KeyboardInterrupt):
        print(f"mosquitto listening on 127.0.0.1:{mosquitto.port} (data: {mosquitto.data_dir})",
              flush=True)
        mosquitto.process.wait()
