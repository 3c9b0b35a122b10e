"""Serving ``/metrics``: a collector that builds its families when scraped, and the HTTP server
(``prometheus_client``'s, on a thread of its own, on a registry of its own: no default process
metrics, only what the snapshots say).

A node's endpoint (:func:`node_exporter`) keeps the latest metrics snapshot the node published
(:attr:`broker.service.Service.on_metrics`); `up`'s (:func:`deployment_exporter`) reads its
monitor's state.

>>> import urllib.request
>>> latest = LatestSnapshot()
>>> latest({"node": "gw-0", "kind": "gateway", "learned": 3})
>>> server = MetricsServer(SnapshotCollector(latest.families), ExporterConfig(port=0))
>>> text = urllib.request.urlopen(server.url, timeout=5).read().decode()
>>> [line for line in text.splitlines() if line.startswith("fleetlearn_readings_total")]
['fleetlearn_readings_total{gateway="gw-0",outcome="learned",reason=""} 3.0']
>>> server.close()
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from fleetlearn.metrics.deployment import deployment_families
from fleetlearn.metrics.families import node_families
from fleetlearn.metrics.settings import ExporterConfig


class SnapshotCollector(Collector):
    """A collector whose families a function makes afresh at each scrape."""

    def __init__(self, families: Callable[[], list[Metric]]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families()


class LatestSnapshot:
    """The latest metrics snapshot a node published (call it with each), as families."""

    def __init__(self) -> None:
        self.snapshot: dict[str, Any] | None = None

    def __call__(self, snapshot: dict[str, Any]) -> None:
        self.snapshot = snapshot  # replaced whole: the server's thread reads one or the other

    def families(self) -> list[Metric]:
        snapshot = self.snapshot
        return node_families([snapshot] if snapshot else [], time.time())


class MetricsServer:
    """``/metrics`` on ``config.host:config.port`` until :meth:`close`."""

    def __init__(self, collector: Collector, config: ExporterConfig) -> None:
        if config.port is None:
            raise ValueError("no metrics port")
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        self.host = config.host
        self._server, self._thread = start_http_server(config.port, config.host, registry)
        self.port: int = self._server.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()  # the port is free again at once
        self._thread.join(5.0)


def node_exporter(service: Any, config: ExporterConfig) -> MetricsServer | None:
    """Serve ``service``'s own metrics (its latest snapshot), if ``config`` has a port."""
    if config.port is None:
        return None
    latest = LatestSnapshot()
    service.on_metrics = latest
    return MetricsServer(SnapshotCollector(latest.families), config)


def deployment_exporter(state: Any, config: ExporterConfig) -> MetricsServer | None:
    """Serve a deployment's metrics from `up`'s monitor ``state``, if ``config`` has a port."""
    if config.port is None:
        return None
    return MetricsServer(SnapshotCollector(lambda: deployment_families(state, time.time())),
                         config)
