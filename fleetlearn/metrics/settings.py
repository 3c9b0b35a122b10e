"""Where a ``/metrics`` endpoint is served (the home of ``--metrics-port`` and
``--metrics-host``'s defaults; no ``prometheus_client`` here, so a command that serves none
does not load it).

>>> ExporterConfig()
ExporterConfig(port=None, host='127.0.0.1')
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExporterConfig:
    """``port`` None: no endpoint (0: any free port); ``host`` 127.0.0.1 keeps it on this
    machine (0.0.0.0 or :: for a Prometheus elsewhere)."""

    port: int | None = None
    host: str = "127.0.0.1"
