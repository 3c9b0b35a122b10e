"""The fleet process: simulated devices publishing readings at a steady rate.

Readings go out at QoS 1 (by default) round-robin over the devices, ``rate`` readings per
second in all, one per message or ``batch`` per message (in the ``layout`` "columns" or
"rows", see :mod:`broker.reading_codec`). Each device's status topic is
retained ``online`` while the fleet runs and ``offline`` after. With ``faults``, a seeded
:class:`~devices.faults.FaultInjector` damages the stream and keeps the ground truth of what
each message must become; the fleet's metrics carry it (``expected``, ``expected_gaps``).
With ``drift_at``, the hidden truth changes that many seconds into the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from broker.address import BrokerAddress
from broker.reading_codec import check_layout, encode_batch
from broker.service import Service
from broker.topics import Topics
from devices.faults import FaultInjector, FaultRates
from devices.simulator import FleetSimulator


@dataclass(frozen=True)
class FleetConfig:
    node_id: str = "fleet"
    devices: int = 20
    sites: int = 2
    seed: int = 0
    rate: float = 1000.0
    batch: int = 1
    #: How a batch (batch > 1) is written: "columns" (each key once) or "rows" (an array).
    layout: str = "columns"
    qos: int = 1
    duration: float | None = None
    metrics_interval: float = 1.0
    faults: FaultRates | None = None
    drift_at: float | None = None


class Fleet(Service):
    kind = "fleet"

    def __init__(self, config: FleetConfig, topics: Topics, broker: BrokerAddress) -> None:
        if config.rate <= 0 or config.batch < 1:
            raise ValueError("rate must be > 0 and batch >= 1")
        if config.faults is not None and config.batch != 1:
            raise ValueError("faults are injected per message: use --batch 1 with --faults")
        check_layout(config.layout)
        self.config = config
        self.sim = FleetSimulator(config.devices, config.sites, config.seed,
                                  boot=time.time_ns() // 1_000_000)  # a restarted fleet's is larger
        self.injector = (FaultInjector(self.sim, config.faults, config.seed)
                         if config.faults is not None else None)
        self.drifted = False
        self.drifted_at: float | None = None  # wall clock
        self.published = 0
        self.messages = 0
        self._next = 0
        self._t0 = 0.0
        super().__init__(config.node_id, topics, broker, metrics_interval=config.metrics_interval,
                         tasks=[(0.005, self.publish_due)])

    def publish_due(self) -> None:
        """Publish what the rate says is due since the start (catches up after a stall)."""
        now = time.monotonic()
        if self.config.duration is not None and now - self._t0 >= self.config.duration:
            self.node.stop()
            return
        if self.config.drift_at is not None and not self.drifted and (
                now - self._t0 >= self.config.drift_at):
            self.sim.drift_to(self.sim.truth.drifted(self.config.seed))
            self.drifted, self.drifted_at = True, time.time()
        due = int((now - self._t0) * self.config.rate) - self.generated
        batch = self.config.batch
        while due >= batch:
            self.publish_next(time.time())
            due -= batch

    @property
    def generated(self) -> int:
        """Readings the simulator made so far (published, or lost on purpose)."""
        return self.sim.published

    def publish_next(self, ts: float) -> None:
        index = self._next
        self._next = (index + 1) % len(self.sim.devices)
        if self.injector is not None:
            self.publish_outgoing(self.injector.next(index, ts))
            return
        device = self.sim.devices[index]
        readings = [self.sim.reading(index, ts) for _ in range(self.config.batch)]
        payload = encode_batch(readings, self.config.layout)
        self.node.publish(self.topics.reading(device.site, device.device), payload,
                          qos=self.config.qos)
        self.published += len(readings)
        self.messages += 1

    def publish_outgoing(self, messages) -> None:
        for m in messages:
            self.node.publish(self.topics.reading(m.site, m.device), m.payload,
                              qos=self.config.qos)
        self.published += len(messages)
        self.messages += len(messages)

    def announce(self, status: bytes) -> None:
        for d in self.sim.devices:
            self.node.publish(self.topics.device_status(d.site, d.device), status, 1, True)

    def counters(self) -> dict:
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        truth = self.sim.truth
        metrics = {
            "published": self.published, "messages": self.messages,
            "rate": self.published / elapsed, "devices": len(self.sim.devices),
            "unacked": self.node.unacked, "drifted": self.drifted,
            "drifted_at": self.drifted_at,
            "truth": {"weights": truth.weights, "intercept": truth.intercept,
                      "target": truth.target, "noise_sd": truth.noise_sd},
        }
        if self.injector is not None:
            metrics.update({
                "expected": dict(self.injector.expected),
                "expected_gaps": self.injector.expected_gaps(),
                "lost": self.injector.lost(), "injected": dict(self.injector.injected),
            })
        return metrics

    def connect(self) -> None:
        """Connect, say every device is online, and start the clock the rate counts from."""
        super().connect()
        self.announce(b"online")
        self._t0 = time.monotonic()

    def on_stop(self) -> None:
        if self.injector is not None:
            self.publish_outgoing(self.injector.drain())
        self.announce(b"offline")
        self.node.flush()
        self.publish_metrics()
