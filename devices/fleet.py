"""The fleet process: simulated devices publishing readings at a steady rate.

Readings go out at QoS 1 (by default) round-robin over the devices, ``rate`` readings per
second in all, one per message or ``batch`` per message (in the ``layout`` "columns" or
"rows", see :mod:`broker.reading_codec`). Each device's status topic is
retained ``online`` while the fleet runs and ``offline`` after. With ``faults``, a seeded
:class:`~devices.faults.FaultInjector` damages the stream and keeps the ground truth of what
each message must become; the fleet's metrics carry it (``expected``, ``expected_gaps``).
With ``drift_at``, the hidden truth changes that many seconds into the run.

``published`` counts what the broker acknowledged (PUBACK) at QoS 1; at QoS 0 there is no
acknowledgement, so it counts what was sent (``published_means`` says which). At most
``send_buffer`` QoS 1 messages wait for their acknowledgement (in flight or queued in the
client); a reading due while the buffer is full is not made (its number goes to the next
reading, so no gateway sees a gap for it) and is counted as ``send_buffer_full``: due by the
rate, never handed to the broker, never published. ``unacked_readings`` are readings sent and
not (yet) acknowledged: at stop, their fate is unknown. A fleet that cannot make readings as fast
as its rate asks counts the shortfall as ``behind``.
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

#: Most seconds one turn spends making readings: a fleet that cannot keep its rate falls
#: behind (``behind``) instead of starving its own network loop, whose acknowledgements make
#: room in the send buffer.
TICK = 0.02


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
    #: Each site's truth differs from the fleet's by this relative size (0: one truth).
    heterogeneity: float = 0.0
    #: Most QoS 1 messages sent and not yet acknowledged; past it, due readings are counted
    #: as ``send_buffer_full`` instead of queued without bound.
    send_buffer: int = 10_000
    #: A share of positives: readings also carry a binary ``event`` channel
    #: (:class:`devices.simulator.FleetSimulator`).
    positives: float | None = None
    #: Only this site's devices (of ``devices`` over ``sites``): one fleet per site broker.
    site: str | None = None


class Fleet(Service):
    kind = "fleet"

    def __init__(self, config: FleetConfig, topics: Topics, broker: BrokerAddress) -> None:
        if config.rate <= 0 or config.batch < 1 or config.send_buffer < 1:
            raise ValueError("rate must be > 0, batch >= 1 and send_buffer >= 1")
        if config.faults is not None and config.batch != 1:
            raise ValueError("faults are injected per message: use --batch 1 with --faults")
        check_layout(config.layout)
        self.config = config
        self.sim = FleetSimulator(config.devices, config.sites, config.seed,
                                  boot=time.time_ns() // 1_000_000,  # a restart's is larger
                                  positives=config.positives,
                                  heterogeneity=config.heterogeneity)
        self.injector = (FaultInjector(self.sim, config.faults, config.seed)
                         if config.faults is not None else None)
        #: the simulator's indices of the devices this fleet publishes for
        self.indices = [i for i, d in enumerate(self.sim.devices)
                        if config.site is None or d.site == config.site]
        if not self.indices:
            raise ValueError(f"no simulated device is on site {config.site!r} (sites: s0 .. "
                             f"s{config.sites - 1})")
        self.drifted = False
        self.drifted_at: float | None = None  # wall clock
        self.published = 0  # acknowledged (QoS 1) or sent (QoS 0)
        self.sent = 0  # readings handed to the client
        self.send_buffer_full = 0  # readings due while the send buffer was full: never sent
        self.due = 0  # readings the rate asked for so far
        self.messages = 0
        self._next = 0
        self._t0 = 0.0
        super().__init__(config.node_id, topics, broker, metrics_interval=config.metrics_interval,
                         tasks=[(0.005, self.publish_due)])

    def publish_due(self) -> None:
        """Publish what the rate says is due since the start (catches up after a stall), for
        at most :data:`TICK` seconds a turn; what is due while the send buffer is full is
        counted as ``send_buffer_full``."""
        now = time.monotonic()
        if self.config.duration is not None and now - self._t0 >= self.config.duration:
            self.node.stop()
            return
        if self.config.drift_at is not None and not self.drifted and (
                now - self._t0 >= self.config.drift_at):
            self.sim.drift_to(self.sim.truth.drifted(self.config.seed))
            self.drifted, self.drifted_at = True, time.time()
        self.due = int((now - self._t0) * self.config.rate)
        due = self.due - self.generated - self.send_buffer_full
        batch, devices = self.config.batch, len(self.indices)
        until = now + TICK
        while due >= batch:
            if self.config.qos and self.node.unacked >= self.config.send_buffer:
                skipped = due // batch
                self.send_buffer_full += skipped * batch
                self._next = (self._next + skipped) % devices
                return
            self.publish_next(time.time())
            due -= batch
            if time.monotonic() >= until:
                return  # the rest stays due: the network's turn (acknowledgements come in)

    @property
    def generated(self) -> int:
        """Readings the simulator made so far (published, or lost on purpose)."""
        return self.sim.published

    @property
    def behind(self) -> int:
        """Readings the rate asked for that the fleet has not made (whole messages): it could
        not keep up (or has not yet had the turn to)."""
        batch = self.config.batch
        return max(0, self.due - self.generated - self.send_buffer_full) // batch * batch

    def publish_next(self, ts: float) -> None:
        index = self.indices[self._next]
        self._next = (self._next + 1) % len(self.indices)
        if self.injector is not None:
            self.publish_outgoing(self.injector.next(index, ts))
            return
        device = self.sim.devices[index]
        readings = [self.sim.reading(index, ts) for _ in range(self.config.batch)]
        payload = encode_batch(readings, self.config.layout)
        self.send(self.topics.reading(device.site, device.device), payload, len(readings))

    def publish_outgoing(self, messages) -> None:
        for m in messages:
            self.send(self.topics.reading(m.site, m.device), m.payload, 1)

    def send(self, topic: str, payload: bytes, readings: int) -> None:
        """Hand one message of ``readings`` readings to the client; they count as published
        when the broker acknowledges it (at QoS 0: now)."""
        self.sent += readings
        self.messages += 1
        if self.config.qos:
            self.node.publish(topic, payload, qos=1, on_ack=lambda: self._acked(readings))
        else:
            self.node.publish(topic, payload, qos=0)
            self.published += readings

    def _acked(self, readings: int) -> None:
        self.published += readings

    def announce(self, status: bytes) -> None:
        for d in (self.sim.devices[i] for i in self.indices):
            self.node.publish(self.topics.device_status(d.site, d.device), status, 1, True)

    def counters(self) -> dict:
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        truth = self.sim.truth
        metrics = {
            "published": self.published, "messages": self.messages,
            "published_means": "acknowledged" if self.config.qos else "sent",
            "sent": self.sent, "unacked_readings": self.sent - self.published,
            "send_buffer_full": self.send_buffer_full, "send_buffer": self.config.send_buffer,
            "behind": self.behind,
            "rate": self.published / elapsed, "devices": len(self.indices),
            "unacked": self.node.unacked, "drifted": self.drifted,
            "drifted_at": self.drifted_at,
            "truth": {"weights": truth.weights, "intercept": truth.intercept,
                      "target": truth.target, "noise_sd": truth.noise_sd},
        }
        if self.config.heterogeneity:
            metrics["site_truths"] = {f"s{i}": {"weights": t.weights, "intercept": t.intercept}
                                      for i, t in enumerate(self.sim.site_truths)}
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
