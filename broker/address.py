"""Where the broker is: an address parsed from ``HOST:PORT``, and the error when it is not there.

Pure (no paho): the CLI, the deployment and the benchmarks parse and pass addresses around;
only :mod:`broker.client_factory` turns one into a connection.
"""

from __future__ import annotations

from dataclasses import dataclass


class BrokerUnreachable(RuntimeError):
    """The broker did not accept a connection in time."""


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is, and how to log in."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, text: str) -> BrokerAddress:
        """Parse ``HOST:PORT`` (or ``HOST``, for port 1883).

        >>> BrokerAddress.parse("127.0.0.1:18830")
        BrokerAddress(host='127.0.0.1', port=18830, username=None, password=None, tls=False)
        >>> str(BrokerAddress.parse("broker.local"))
        'broker.local:1883'
        """
        host, _, port = text.rpartition(":")
        if not host:
            return cls(host=text)
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"broker address {text!r} is not HOST:PORT")
        return cls(host=host, port=int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"
