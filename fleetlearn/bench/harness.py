"""What the broker benchmarks share: a broker of their own, a backlog publisher, node processes
that report back over a pipe, RSS from /proc, percentiles and a slope fit.

Subscribers are measured on a *backlog*: the subscriber connects and subscribes, then stops
reading; the publisher sends every message (the broker holds them for it: QoS 1 up to its
``max_queued_messages``, QoS 0 in its socket buffers); then the subscriber is told to go and
the clock runs from that moment until it has taken in all N readings. So the figure is what the
subscriber can take in, not how fast this Python publisher can send, and the publisher does not
compete with it for the 2 cores while the clock runs.
"""

from __future__ import annotations

import contextlib
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from broker.address import BrokerAddress
from broker.client import Node
from broker.mosquitto import MosquittoBroker
from broker.processes import stop_process
from broker.reading_codec import encode_batch
from broker.topics import Topics
from devices.simulator import FleetSimulator
from fleetlearn.bench.measure import cpu_s

Progress = Callable[[str], None]


@contextlib.contextmanager
def own_broker() -> Iterator[BrokerAddress]:
    """A mosquitto of this benchmark's own on a free loopback port, stopped afterwards."""
    with MosquittoBroker() as broker:
        yield BrokerAddress(port=broker.port)


def new_prefix() -> str:
    """A topic prefix no other run uses (runs on one broker never see each other's messages)."""
    return f"bench{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Backlog:
    """Pre-encoded reading messages of a simulated fleet: (site, device, payload)."""

    messages: list[tuple[str, str, bytes]]
    readings: int
    sim: FleetSimulator

    @classmethod
    def build(cls, readings: int, batch: int = 1, devices: int = 100, sites: int = 2,
              seed: int = 1, layout: str = "columns") -> Backlog:
        """``readings`` readings round-robin over the devices, ``batch`` per message, a batch
        in ``layout`` ("columns" or "rows", :func:`broker.reading_codec.encode_batch`)."""
        sim = FleetSimulator(devices, sites, seed)
        now = time.time()
        messages = []
        left, index = readings, 0
        while left > 0:
            k = min(batch, left)
            dev = sim.devices[index]
            block = [sim.reading(index, now) for _ in range(k)]
            payload = encode_batch(block, layout)
            messages.append((dev.site, dev.device, payload))
            left -= k
            index = (index + 1) % devices
        return cls(messages, readings, sim)


def publish_backlog(address: BrokerAddress, prefix: str, backlog: Backlog, qos: int,
                    timeout: float = 120.0) -> float:
    """Publish every message and wait until the broker has them all; returns seconds taken.

    QoS 1 messages are confirmed one by one; after QoS 0 ones, a QoS 1 marker on a topic no one
    reads is confirmed, and the broker handles one connection's messages in order.
    """
    topics = Topics(prefix)
    node = Node(f"bench-pub-{uuid.uuid4().hex[:6]}", address)
    node.connect()
    start = time.monotonic()
    try:
        for i, (site, device, payload) in enumerate(backlog.messages):
            node.publish(topics.reading(site, device), payload, qos=qos)
            if i % 500 == 499:
                node.pump(0)
        node.publish(f"{prefix}/bench/marker", b"end", qos=1)
        if not node.flush(timeout):
            raise RuntimeError("the broker did not take the whole backlog")
        return time.monotonic() - start
    finally:
        node.close(flush_timeout=1.0)


class Child:
    """A node process (:mod:`fleetlearn.bench.child`) that reports one JSON line at a time:
    ``ready`` once listening, then its result."""

    def __init__(self, role: str, **spec: Any) -> None:
        if spec["address"].ca is not None:  # a TLS listener with a CA of its own
            spec["ca"] = spec["address"].ca
        spec["address"] = str(spec["address"])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fleetlearn.bench.child", role,
             orjson.dumps(spec).decode()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.process.pid

    def receive(self, timeout: float) -> dict[str, Any]:
        out = self.process.stdout
        ready, _, _ = select.select([out], [], [], timeout)
        line = out.readline() if ready else b""
        if not line:
            raise RuntimeError(f"a benchmark process (pid {self.pid}) did not answer within "
                               f"{timeout:g}s (exit code {self.process.poll()})")
        message = orjson.loads(line)
        if "error" in message:
            raise RuntimeError(f"a benchmark process failed: {message['error']}")
        return message

    def go(self) -> None:
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        """End the process this object started (and only it)."""
        proc = self.process
        stop_process(proc, timeout=10.0, kill_timeout=5.0)
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()


def run_backlog(address: BrokerAddress, backlog: Backlog, qos: int,
                subscribers: list[tuple[str, dict[str, Any]]],
                timeout: float = 120.0, broker_pid: int | None = None) -> list[dict[str, Any]]:
    """Start the subscriber processes, publish the backlog, let them go; their results (with
    ``broker_pid``, each has ``broker_cpu_s``: the broker's CPU seconds from go to the last).

    Each subscriber is a role of :mod:`fleetlearn.bench.child` and its spec (``address`` and
    ``prefix`` are added); it answers ``ready`` once subscribed, waits for ``go``, and answers
    with ``start`` and ``end`` (``time.monotonic()``, system-wide on Linux) when done.
    """
    prefix = new_prefix()
    children = [Child(role, address=address, prefix=prefix, **spec)
                for role, spec in subscribers]
    try:
        ready = [c.receive(60.0) for c in children]
        published = publish_backlog(address, prefix, backlog, qos, timeout)
        go = time.monotonic()
        broker_cpu = cpu_s(broker_pid) if broker_pid else 0.0
        for c in children:
            c.go()
        results = [c.receive(timeout + 10.0) for c in children]
        broker_cpu = cpu_s(broker_pid) - broker_cpu if broker_pid else 0.0
    finally:
        for c in children:
            c.stop()
    for result, before in zip(results, ready, strict=True):
        result["rss_ready_mib"] = before.get("rss_mib")
        result["publish_s"] = published
        result["go"] = go
        if broker_pid:
            result["broker_cpu_s"] = broker_cpu
    return results
