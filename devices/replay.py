"""Replay a CSV file as device readings: the service that publishes a :class:`ReplayPlan`.

:class:`Replay` reads its plan with :func:`devices.replay_plan.load_readings` (one reading a
row, in time order) and publishes it through its :class:`~broker.service.Service` node like the
simulated fleet does: as fast as the broker acknowledges (at most ``max_unacked`` QoS 1
messages outstanding), or at ``speed`` times the recorded pace; then it stops by itself. Its
readings carry its start time in ms as their boot id, so a replay run again into the same
gateways is a restart of its devices, learned again, not refused as a replay.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from broker.address import BrokerAddress
from broker.reading_codec import check_layout, encode_batch
from broker.service import Service
from broker.topics import Topics
from devices.replay_plan import ReplayPlan, load_readings

__all__ = ["Replay", "ReplayConfig", "ReplayPlan", "load_readings"]


@dataclass(frozen=True, kw_only=True)
class ReplayConfig:
    node_id: str = "replay"
    path: str | Path
    time_col: str
    device_col: str
    columns: tuple[str, ...] | None = None
    #: A separate date column (the time column then holds the time of day); None: none.
    date_col: str | None = None
    #: The times' strptime format (e.g. "%d/%m/%Y %H:%M"); None: epoch seconds or ISO 8601.
    time_format: str | None = None
    skip_rows: int = 0  # lines before the header row
    #: A column naming each row's time zone (IANA or offset); None: times without one are UTC.
    tz_col: str | None = None
    site: str = "s0"
    #: Speed-up over the recorded pace; None: as fast as the broker takes it.
    speed: float | None = None
    qos: int = 1
    batch: int = 1
    #: How a batch (batch > 1) is written: "columns" (each key once) or "rows" (an array).
    layout: str = "columns"
    metrics_interval: float = 1.0
    #: Most QoS 1 messages in flight at once (QoS 0: most messages queued in one turn).
    max_unacked: int = 1000

    def plan(self, boot: int = 0) -> ReplayPlan:
        """The file's readings (:func:`~devices.replay_plan.load_readings`)."""
        return load_readings(self.path, self.time_col, self.device_col, columns=self.columns,
                             site=self.site, boot=boot, date_col=self.date_col,
                             time_format=self.time_format, skip_rows=self.skip_rows,
                             tz_col=self.tz_col)


class Replay(Service):
    """Publishes a CSV's readings in time order, then stops its node."""

    kind = "replay"

    def __init__(self, config: ReplayConfig, topics: Topics, broker: BrokerAddress) -> None:
        if config.speed is not None and not config.speed > 0:
            raise ValueError("speed must be > 0")
        if config.batch < 1 or config.max_unacked < 1 or config.qos not in (0, 1):
            raise ValueError("batch and max_unacked must be >= 1 and qos 0 or 1")
        check_layout(config.layout)
        self.config = config
        self.plan = config.plan(boot=time.time_ns() // 1_000_000)
        self.total = len(self.plan.readings)
        self.published = 0
        self.messages = 0
        self.done = False
        self._next = 0
        self._t0: float | None = None  # set by the first turn, however the node is driven
        super().__init__(config.node_id, topics, broker, metrics_interval=config.metrics_interval,
                         tasks=[(0.005, self.publish_due)])

    def publish_due(self) -> None:
        """Publish what is due and what flow control allows; stop once all is delivered."""
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        room = self.config.max_unacked - self.node.unacked
        while room > 0 and self._next < self.total and self._due(self._next, now):
            self.publish_one_message(now)
            room -= 1
        if self._next == self.total and self.node.delivered:  # QoS 0: written to the socket
            self.done = True
            self.node.stop()

    def _due(self, index: int, now: float) -> bool:
        if self.config.speed is None:
            return True
        first = self.plan.readings[0].ts
        return now - self._t0 >= (self.plan.readings[index].ts - first) / self.config.speed

    def publish_one_message(self, now: float) -> None:
        """The next reading, with up to ``batch - 1`` due readings of the same device after it."""
        readings = self.plan.readings
        first = readings[self._next]
        end = self._next + 1
        while (end < self.total and end - self._next < self.config.batch
               and readings[end].device == first.device and self._due(end, now)):
            end += 1
        group = readings[self._next:end]
        payload = encode_batch(group, self.config.layout)
        self.node.publish(self.topics.reading(self.plan.site, first.device), payload,
                          qos=self.config.qos)
        self._next = end
        self.published += len(group)
        self.messages += 1

    def counters(self) -> dict:
        elapsed = max(time.monotonic() - (self._t0 or time.monotonic()), 1e-9)
        return {
            "published": self.published, "total": self.total, "done": self.done,
            "messages": self.messages, "rate": self.published / elapsed,
            "devices": len(self.plan.devices), "unacked": self.node.unacked,
            "speed": self.config.speed, "source": os.fspath(self.config.path),
        }

    def on_stop(self) -> None:
        """Deliver what is in flight, then the final metrics (QoS 1: the node's close waits)."""
        self.node.flush()
        self.publish_metrics(qos=1)
