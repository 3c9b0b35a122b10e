"""A live page fed by a monitor: every second, from the monitor's own loop (so the state is
read on the thread that writes it), the snapshot of what it knows goes to the page's server.

>>> from fleetlearn.deploy.state import DeploymentState
>>> live = LiveDashboard(DeploymentState(), port=0)
>>> live.start()
>>> live.server.url.startswith("http://127.0.0.1:"), live.server.running
(True, True)
>>> live.close()
>>> live.server.running
False
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from fleetlearn.dashboard.rates import Rates
from fleetlearn.dashboard.server import DashboardServer
from fleetlearn.dashboard.settings import DashboardSettings
from fleetlearn.dashboard.snapshot import snapshot, totals
from fleetlearn.deploy.monitor import Monitor
from fleetlearn.deploy.processes import Child
from fleetlearn.deploy.state import DeploymentState


class LiveDashboard:
    def __init__(self, state: DeploymentState, port: int,
                 processes: Callable[[], dict[str, dict[str, Any]]] | None = None,
                 every: float = DashboardSettings.every) -> None:
        """``processes``: the node processes, where the watcher started them (`up`), by node:
        their ``pid`` and ``exit_code`` (None while running)."""
        self.state, self.processes, self.every = state, processes, every
        self.server = DashboardServer(port)
        self.rates = Rates()
        self.monitor: Monitor | None = None
        self.closed = False

    def start(self, monitor: Monitor | None = None) -> None:
        """Serve the page (:class:`OSError` if the port is taken); with ``monitor``, publish
        from its loop every ``every`` seconds."""
        self.server.start()
        self.monitor = monitor
        if monitor is not None:
            monitor.node.every(self.every, self.publish)
        self.publish()

    def publish(self, ended: str | None = None) -> None:
        """The snapshot of now, to every open page."""
        self.rates.observe(time.monotonic(), totals(self.state))
        snap = snapshot(self.state, time.time(), self.rates.per_second(),
                        self.processes() if self.processes is not None else None, ended,
                        connected=self.monitor is None or self.monitor.node.connected)
        self.server.publish(orjson.dumps(snap))

    def close(self, ended: str = "the deployment has stopped") -> None:
        """The last snapshot (saying why it is the last), then stop serving."""
        if self.closed:
            return
        self.closed = True
        if self.server.running:
            self.publish(ended)
        self.server.stop()


def attach(monitor: Monitor, state: DeploymentState, port: int,
           children: list[Child] | None = None) -> LiveDashboard:
    """A live page on ``port`` showing ``state``, published from ``monitor``'s loop;
    ``children``: the node processes the watcher started (their pids and exit codes are
    shown), a list it goes on filling."""
    live = LiveDashboard(state, port, None if children is None else
                         lambda: {c.name: c.record() for c in children})
    live.start(monitor)
    return live
