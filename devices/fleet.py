"""The fleet process: simulated devices publishing readings at a steady rate.

Readings go out at QoS 1 (by default) round-robin over the devices, ``rate`` readings per
second in all, one per message or ``batch`` per message. Each device's status topic is
retained ``online`` while the fleet runs and ``offline`` after.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from broker.client import BrokerAddress, Node
from broker.codec import encode_json, encode_reading, encode_readings
from broker.topics import Topics
from devices.simulator import FleetSimulator


@dataclass(frozen=True)
class FleetConfig:
    node_id: str = "fleet"
    devices: int = 20
    sites: int = 2
    seed: int = 0
    rate: float = 1000.0
    batch: int = 1
    qos: int = 1
    duration: float | None = None
    metrics_interval: float = 1.0


class Fleet:
    def __init__(self, config: FleetConfig, topics: Topics, broker: BrokerAddress) -> None:
        if config.rate <= 0 or config.batch < 1:
            raise ValueError("rate must be > 0 and batch >= 1")
        self.config = config
        self.topics = topics
        self.sim = FleetSimulator(config.devices, config.sites, config.seed)
        self.published = 0
        self.messages = 0
        self._next = 0
        self._t0 = 0.0
        self.node = Node(config.node_id, broker, status_topic=topics.node_status(config.node_id))
        self.node.every(0.005, self.publish_due)
        self.node.every(config.metrics_interval, self.publish_metrics)

    def publish_due(self) -> None:
        """Publish what the rate says is due since the start (catches up after a stall)."""
        now = time.monotonic()
        if self.config.duration is not None and now - self._t0 >= self.config.duration:
            self.node.stop()
            return
        due = int((now - self._t0) * self.config.rate) - self.published
        batch = self.config.batch
        while due >= batch:
            self.publish_one_message(time.time())
            due -= batch

    def publish_one_message(self, ts: float) -> None:
        index = self._next
        self._next = (index + 1) % len(self.sim.devices)
        device = self.sim.devices[index]
        readings = [self.sim.reading(index, ts) for _ in range(self.config.batch)]
        payload = encode_reading(readings[0]) if len(readings) == 1 else encode_readings(readings)
        self.node.publish(self.topics.reading(device.site, device.device), payload,
                          qos=self.config.qos)
        self.published += len(readings)
        self.messages += 1

    def announce(self, status: bytes) -> None:
        for d in self.sim.devices:
            self.node.publish(self.topics.device_status(d.site, d.device), status, 1, True)

    def metrics(self) -> dict:
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        truth = self.sim.truth
        return {
            "node": self.config.node_id, "kind": "fleet", "ts": time.time(),
            "published": self.published, "messages": self.messages,
            "rate": self.published / elapsed, "devices": len(self.sim.devices),
            "unacked": self.node.unacked,
            "truth": {"weights": truth.weights, "intercept": truth.intercept,
                      "target": truth.target, "noise_sd": truth.noise_sd},
        }

    def publish_metrics(self) -> None:
        self.node.publish(self.topics.metrics(self.config.node_id), encode_json(self.metrics()))

    def run(self) -> None:
        self.node.connect()
        self.node.install_signal_handlers()
        self.announce(b"online")
        self._t0 = time.monotonic()
        self.node.run(on_stop=self._final)

    def _final(self) -> None:
        self.announce(b"offline")
        self.node.flush()
        self.publish_metrics()
