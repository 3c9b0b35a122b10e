"""`fleetlearn dashboard`: a monitor subscribed to a running deployment, and its live page,
until SIGINT or SIGTERM (or a broker gone longer than ``give_up_after``)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable

from broker.address import BrokerAddress
from broker.keyring import Keyring
from broker.topics import Topics
from fleetlearn.dashboard.live import LiveDashboard
from fleetlearn.deploy.monitor import Monitor
from fleetlearn.deploy.state import DeploymentState

#: Models the watcher keeps (the latest ones): it may run for days, and the page shows the
#: versions over the time they span.
MODELS_KEPT = 2000


def forget_old_models(state: DeploymentState, keep: int = MODELS_KEPT) -> None:
    """Keep only the last ``keep`` models seen (the state of `up` keeps all, for its report).

    >>> from fleetlearn.deploy.state import ModelSeen
    >>> state = DeploymentState(models=[ModelSeen(v, 0.0, None, 0, ()) for v in range(5)])
    >>> forget_old_models(state, keep=2)
    >>> [m.version for m in state.models]
    [3, 4]
    """
    del state.models[:-keep]


def watch(topics: Topics, broker: BrokerAddress, port: int, give_up_after: float | None = None,
          keys: Keyring | None = None, say: Callable[[str], None] = print) -> None:
    """Connect, serve the page on ``port``, and show what the deployment under ``topics``
    publishes (its metrics, retained statuses and model, dead letters) until told to stop.
    ``say`` is told the page's address once it is served."""
    state = DeploymentState()
    monitor = Monitor(topics, broker, state, give_up_after=give_up_after, keys=keys)
    monitor.node.log.setLevel(logging.NOTSET)  # a lost broker is said (up says it itself)
    monitor.connect()
    live = LiveDashboard(state, port)
    monitor.node.every(60.0, lambda: forget_old_models(state))
    stopping: list[int] = []
    handlers = {sig: signal.signal(sig, lambda n, _: stopping.append(n))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        live.start(monitor)
        say(f"live page: {live.server.url} (Ctrl-C to stop)")
        while not stopping:
            monitor.poll(0.1)
    finally:
        try:
            live.close("the dashboard was stopped")
            monitor.close()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
