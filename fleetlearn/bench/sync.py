"""Sync latency: from the first learner update of a round being published to every learner
having adopted the model merged from that round; p50 and p99 over rounds, for K learners.

The learners are K real :class:`~gateway.service.Gateway` objects in this process (their model
connections driven from one thread, as a gateway drives its own); the aggregator is the real
one, in a process of its own, with quorum K, so a round closes on its K-th update.
"""

from __future__ import annotations

import select
import time
from pathlib import Path
from typing import Any

import numpy as np

from broker.address import BrokerAddress
from broker.client import Node
from broker.keyring import Keyring
from broker.node_status import is_online
from broker.topics import Topics
from fleetlearn.bench.harness import Child, Progress, new_prefix, own_broker
from fleetlearn.bench.measure import percentile
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from gateway.service import Gateway
from learners.aggregator import Aggregator, AggregatorConfig
from learners.federation import FederationConfig
from learners.strategies import SyncRounds

FEATURES = ("a", "b", "c")


def make_aggregator(quorum: int, topics: Topics, address: BrokerAddress,
                    round_timeout: float = 10.0, keyring: Keyring | None = None) -> Aggregator:
    """The aggregator under test, through its public surface only (one place to change)."""
    federation = FederationConfig(SyncRounds(round_timeout=round_timeout), quorum=quorum)
    return Aggregator(AggregatorConfig(federation=federation, keyring=keyring), topics, address)


def _keyring(keys: str | None, node: str) -> Keyring | None:
    """A node's keyring from a directory :func:`fleetlearn.bench.signing.fleet_keys` made."""
    if keys is None:
        return None
    return Keyring(Path(keys) / f"{node}.key", Path(keys) / "trust.toml")


def aggregator_process(conn: Any, address: BrokerAddress, prefix: str, quorum: int,
                       keys: str | None = None) -> None:
    """A child process: run the aggregator (signing models and checking updates, with
    ``keys``) until SIGTERM."""
    make_aggregator(quorum, Topics(prefix), address, keyring=_keyring(keys, "aggregator")).run()


def _wait_online(address: BrokerAddress, topics: Topics, node: str, timeout: float) -> None:
    seen: list[bytes] = []
    watcher = Node("bench-watch", address, subscriptions=[(topics.node_status(node), 1)],
                   handler=lambda t, p: seen.append(p))
    watcher.connect()
    deadline = time.monotonic() + timeout
    try:
        while not any(map(is_online, seen)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{node} did not come online in {timeout:g}s")
            watcher.poll(0.05)
    finally:
        watcher.close(1.0)


def _round(gateways: list[Gateway], rng: np.random.Generator, timeout: float) -> float:
    """One round: every learner learns a little, then all send; seconds until the last adopts."""
    for gw in gateways:
        X = rng.normal(size=(20, len(FEATURES)))
        gw.local.learn(X, X @ np.array([1.0, -2.0, 0.5]) + 3.0)
    version = gateways[0].local.base_version
    start = time.monotonic()
    for gw in gateways:
        gw.publish_update()
    waiting = {gw.control.socket(): gw for gw in gateways}
    last = start
    deadline = start + timeout
    while waiting:
        ready, _, _ = select.select(list(waiting), [], [], 0.01)
        for sock in ready:
            gw = waiting[sock]
            gw.control.poll(0)
            if gw.local.base_version > version:
                last = time.monotonic()
                del waiting[sock]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(waiting)} of {len(gateways)} learners did not adopt "
                               f"version {version + 1} within {timeout:g}s")
    return last - start


def sync_latency(address: BrokerAddress, k: int, rounds: int, warmup: int = 2,
                 timeout: float = 10.0, keys: Path | None = None) -> list[float]:
    """Latencies (s) of ``rounds`` rounds with ``k`` learners, after ``warmup`` rounds. With
    ``keys`` (a directory with ``aggregator.key``, ``learner-<i>.key`` and ``trust.toml``:
    :func:`fleetlearn.bench.signing.fleet_keys`), the aggregator signs its models and checks
    every update, and every learner signs its updates and checks every model."""
    topics = Topics(new_prefix())
    spec = {"keys": str(keys)} if keys is not None else {}
    aggregator = Child("aggregator", address=address, prefix=topics.prefix, quorum=k, **spec)
    gateways: list[Gateway] = []
    try:
        _wait_online(address, topics, "aggregator", 30.0)
        features = FeatureSpec(FEATURES, "y")
        for i in range(k):
            name = f"learner-{i}"
            keyring = _keyring(str(keys) if keys is not None else None, name)
            gw = Gateway(GatewayConfig(node_id=name, spec=features, keyring=keyring), topics,
                         address)
            gw.control.connect()  # models and updates travel on the control connection only
            gateways.append(gw)
        rng = np.random.default_rng(0)
        latencies = [_round(gateways, rng, timeout) for _ in range(warmup + rounds)]
        refused = {gw.node_id: dict(gw.other_rejected) for gw in gateways if gw.other_rejected}
        if refused:  # a model refused (a signature) would be a round not measured
            raise RuntimeError(f"learners refused models: {refused}")
        return latencies[warmup:]
    finally:
        for gw in gateways:
            gw.control.close(1.0)
        aggregator.stop()


def bench_sync(learners: tuple[int, ...] = (2, 8, 32), rounds: int = 50,
               progress: Progress | None = None, **_: Any) -> list[dict[str, Any]]:
    """p50 / p99 of the sync latency per number of learners."""
    rows = []
    with own_broker() as address:
        for k in learners:
            if progress:
                progress(f"sync: {k} learners, {rounds} rounds")
            ms = [s * 1000 for s in sync_latency(address, k, rounds)]
            rows.append({"scenario": "sync", "stream": f"{k} learners, quorum {k}",
                         "rounds": rounds, "baseline": "goal: p99 <= 50 ms at 8 learners",
                         "p50_ms": round(percentile(ms, 50), 2),
                         "p99_ms": round(percentile(ms, 99), 2),
                         "max_ms": round(max(ms), 2)})
    return rows
