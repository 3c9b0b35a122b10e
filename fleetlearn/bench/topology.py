"""Sites and bridges (issue #16, point 5): what the core broker carries, flat against bridged +
hierarchical, and how soon after a site's link heals the global model includes it again.

One fleet, 3 sites x 2 gateways (30 devices, 1,000 readings/s), run by `up` twice: flat (one
broker: every gateway, predictor and fleet on the core; the baseline) and ``--topology
bridged`` (:class:`~fleetlearn.deploy.bridged.BridgedDeployment`, each site's bridge through a
:class:`~fleetlearn.bench.link.CutLink`). For ``seconds`` each, a subscriber to every topic of
the run on the core counts messages and bytes (topic + payload) a second; the weight error is
that of the last global model at the end of the window. Then, in the bridged run, site ``s0``'s
link is cut for ``partition_s`` seconds and healed: the row gives the seconds from the heal to
the first global model whose contributors include ``site-s0`` (and, apart, until the site
broker says its bridge is up again, and the core's dead letters in between, by reason and
sender).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from broker.bridge import site_aggregator_id
from broker.client import Node
from fleetlearn.bench.harness import Progress
from fleetlearn.bench.link import CutLink
from fleetlearn.deploy.bridged import BridgedDeployment
from fleetlearn.deploy.settings import UpSettings
from fleetlearn.deploy.up import LocalDeployment

SITES, GATEWAYS, DEVICES, RATE = 3, 6, 30, 1000.0
#: Seconds any one step may take (a deployment coming up, a model arriving) before the run
#: is given up as failed.
STEP_TIMEOUT = 60.0


class LinkedDeployment(BridgedDeployment):
    """A bridged deployment whose every site's bridge runs through a link the bench can cut."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.links: dict[str, CutLink] = {}

    def _bridge_port(self, site: str) -> int:
        link = CutLink(("127.0.0.1", 0), ("127.0.0.1", self.own_broker.port))
        self.links[site] = link
        return link.port

    def stop_all(self) -> None:
        super().stop_all()
        for link in self.links.values():
            link.close()


def _until(dep: LocalDeployment, done: Callable[[], bool], what: str,
           *also: Node) -> float:
    """Poll the deployment's monitor (and ``also``) until ``done``; the time it was."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"topology: no {what} within {STEP_TIMEOUT:g} s")
        dep.monitor.poll(0.02)
        for node in also:
            node.poll(0.0)
    return time.monotonic()


def _refusal(payload: bytes) -> str:
    """A dead letter as ``reason (sender)``, the sender the last level of the refused topic.

    >>> _refusal(b'{"reason": "stale", "topic": "fleet/learn/update/site-s0"}')
    'stale (site-s0)'
    >>> _refusal(b"junk")
    'unreadable'
    """
    try:
        letter = orjson.loads(payload)
        return f"{letter['reason']} ({str(letter['topic']).rsplit('/', 1)[-1]})"
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "unreadable"


def core_traffic(dep: LocalDeployment, seconds: float) -> dict[str, Any]:
    """Messages and bytes a second published to the core over ``seconds``, and the weight
    error of the last global model at the end."""
    seen = [0, 0]

    def count(topic: str, payload: bytes) -> None:
        seen[0] += 1
        seen[1] += len(topic) + len(payload)

    tap = Node("topology-tap", dep.address, subscriptions=[(f"{dep.topics.prefix}/#", 1)],
               handler=count)
    tap.connect(timeout=5)
    try:
        end = time.monotonic() + seconds
        _until(dep, lambda: time.monotonic() >= end, "end of the window", tap)
    finally:
        tap.close(flush_timeout=1)
    last = dep.state.models[-1] if dep.state.models else None
    return {"messages_per_s": round(seen[0] / seconds, 1), "bytes_per_s": round(seen[1] / seconds),
            "weight_error": None if last is None or last.weight_error is None
            else round(last.weight_error, 4),
            "learned": dep.state.readings()["learned"]}


def heal_time(dep: LinkedDeployment, site: str, partition_s: float) -> dict[str, Any]:
    """Cut ``site``'s link once a global model includes it, heal it ``partition_s`` seconds
    later, and time the way back."""
    node, models = site_aggregator_id(site), dep.state.models
    states: list[tuple[float, bytes]] = []
    watch = Node("topology-bridge-watch", dep.site_address[site],
                 subscriptions=[(dep.topics.bridge_state(site), 1)],
                 handler=lambda _t, p: states.append((time.monotonic(), p)))
    refused: Counter[str] = Counter()
    letters = Node("topology-letters", dep.address,
                   subscriptions=[(dep.topics.deadletter_filter, 1)],
                   handler=lambda _t, p: refused.update([_refusal(p)]) if counting else None)
    counting = False
    for client in (watch, letters):
        client.connect(timeout=5)
    try:
        _until(dep, lambda: any(node in m.contributors for m in models),
               f"global model with {node} before the cut", watch, letters)
        cut = time.monotonic()
        dep.links[site].cut()
        down = _until(dep, lambda: any(at >= cut and p == b"0" for at, p in states),
                      f"word from {site}'s broker that its bridge is down", watch, letters)
        _until(dep, lambda: time.monotonic() >= cut + partition_s, "end of the partition",
               watch, letters)
        before, healed = len(models), time.monotonic()
        counting = True
        dep.links[site].heal()
        back = _until(dep, lambda: any(node in m.contributors for m in models[before:]),
                      f"global model with {node} after healing", watch, letters)
        _until(dep, lambda: any(at >= healed and p == b"1" for at, p in states),
               f"word from {site}'s broker that its bridge is up", watch, letters)
        counting = False
    finally:
        for client in (watch, letters):
            client.close(flush_timeout=1)
    up = min(at for at, p in states if at >= healed and p == b"1")
    return {"partition_s": round(healed - cut, 1), "bridge_down_s": round(down - cut, 2),
            "reconnect_s": round(up - healed, 2), "heal_s": round(back - healed, 2),
            "refused_in_heal": dict(refused)}


def _run(topology: str, seconds: float, partition_s: float | None,
         strategy: str | None) -> dict[str, Any]:
    kind = LinkedDeployment if topology == "bridged" else LocalDeployment
    logs = Path(tempfile.mkdtemp(prefix=f"bench-topology-{topology}-"))
    dep = kind(UpSettings(topology=topology, sites=SITES, gateways=GATEWAYS, devices=DEVICES,
                          rate=RATE, duration=None, log_dir=logs, strategy=strategy))
    try:
        dep.start()
        result = core_traffic(dep, seconds)
        if partition_s is not None:
            result |= heal_time(dep, "s0", partition_s)
        return result
    finally:
        dep.stop_all()
        shutil.rmtree(logs, ignore_errors=True)


def _goal(met: bool) -> str:
    return "met" if met else "not met"


def bench_topology(seconds: float = 20.0, partition_s: float = 20.0,
                   strategy: str | None = None, progress: Progress | None = None,
                   **_: Any) -> list[dict[str, Any]]:
    """Two rows: the core's traffic bridged against flat; the seconds from healing a site's
    partition to a global model that includes it. ``strategy``: the aggregators' (`up
    --strategy`; None: up's defaults, sync rounds, and at a bridged core fedasync with max
    staleness 100), in both runs."""
    say = progress or (lambda _text: None)
    say(f"topology: flat, {seconds:g} s")
    flat = _run("flat", seconds, None, strategy)
    say(f"topology: bridged, {seconds:g} s, then site s0 cut for {partition_s:g} s")
    bridged = _run("bridged", seconds, partition_s, strategy)
    fewer = flat["messages_per_s"] / max(bridged["messages_per_s"], 1e-9)
    errors = (bridged["weight_error"], flat["weight_error"])
    how = strategy or "default strategies"
    traffic = {
        "scenario": "topology",
        "stream": f"into the core, {SITES} sites x {GATEWAYS // SITES} gateways, {DEVICES} "
                  f"devices, {RATE:,.0f} readings/s, {seconds:g} s, {how}: "
                  "bridged + hierarchical",
        "baseline": "flat (every node on the core)",
        "messages_per_s": bridged["messages_per_s"],
        "baseline_messages_per_s": flat["messages_per_s"],
        "ratio": round(1 / fewer, 4), "times_fewer": round(fewer, 1),
        "bytes_per_s": bridged["bytes_per_s"], "baseline_bytes_per_s": flat["bytes_per_s"],
        "bytes_ratio": round(bridged["bytes_per_s"] / max(flat["bytes_per_s"], 1), 4),
        "weight_error": errors[0], "baseline_weight_error": errors[1],
        "learned": bridged["learned"], "baseline_learned": flat["learned"],
        "goal": _goal(fewer >= 2 and all(e is not None and e <= 0.05 for e in errors)),
    }
    heal = {
        "scenario": "topology",
        "stream": f"site s0's link cut for {partition_s:g} s, then healed, {how}: seconds to a "
                  "global model with site-s0",
        "baseline": "goal: <= 5 s",
        **{k: bridged[k] for k in ("partition_s", "bridge_down_s", "reconnect_s", "heal_s",
                                  "refused_in_heal")},
        "goal": _goal(bridged["heal_s"] <= 5.0),
    }
    return [traffic, heal]
